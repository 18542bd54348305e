"""`docsprint serve`: the HTTP service (FastAPI + uvicorn), its batcher and its web page."""
