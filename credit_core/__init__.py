"""What every service shares: the application record and its formats, the message contracts, configuration, retry and Kafka publishing."""
