"""Anomaly scoring of people's behaviour."""
