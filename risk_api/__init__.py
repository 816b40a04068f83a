"""Risk API: the trained logistic-regression model and the Flask app that scores applicants."""
