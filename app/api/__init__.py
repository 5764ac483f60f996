"""The HTTP edge: FastAPI app, routes, schemas, error mapping, auth, request metrics."""
