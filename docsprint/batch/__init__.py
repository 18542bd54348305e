"""`docsprint batch`: many documents on Ray Data, resumable after a crash (see job.py)."""
