"""The web dashboard: pages and server-rendered charts for supervisors and auditors."""
