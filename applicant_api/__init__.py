"""The applicant data API: MySQL schema and pool, the LendingClub importer and the Flask app."""
