"""The API's routes, one module per noun, each an `APIRouter` with its prefix and tags; they
take what they use from `api.deps` and the services beside them (`api/main.py` wires them)."""
