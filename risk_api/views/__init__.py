"""The risk API's blueprints, one per resource."""
