"""Alerts once raised: their lifecycle and audit log (`lifecycle`), the supervisors' digests (`digests`) and
the exports (`export`)."""
