"""Applicant data: MySQL schema, LendingClub import, synthetic data and the applicant API."""
