"""Producer: polls the applicant API and publishes applicants to Kafka."""
