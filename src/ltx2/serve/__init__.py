"""`ltx2 serve`: OpenAI's Videos API, a persistent job queue and a web page, on a model loaded once.

Needs the `serve` extra (FastAPI, Uvicorn, python-multipart); the rest of ltx2 never imports this package.
"""
