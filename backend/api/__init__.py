"""REST API of the ML engine (FastAPI): ``/api/ml-management/...`` on port 8000.

    uvicorn backend.api.main:app --port 8000        # OpenAPI UI at http://127.0.0.1:8000/docs

Routes are thin: they validate the request, call :mod:`backend.services` and map its errors to
HTTP statuses. See :mod:`backend.api.main` for the app factory.
"""
