"""Producers search past posts by meaning (the same search the host's `recall_posts` uses).

The embeddings themselves are computed off the request path by the worker the API's lifespan
owns (`db.memory.keep_embedding`); a post is searchable a moment after it is written.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from api.deps import MemoryDep, Producer
from api.errors import SIGNED_IN

router = APIRouter(
    prefix="/api/posts",
    tags=["posts"],
    responses={**SIGNED_IN, 503: {"description": "embeddings are off, or the database is away"}},
)


class FoundPostOut(BaseModel):
    id: uuid.UUID
    text: str
    author: str
    created_at: datetime
    status: str
    distance: float
    model: str


@router.get("/search", response_model=list[FoundPostOut])
async def search_posts(
    _: Producer,
    memory: MemoryDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="what to look for")],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[FoundPostOut]:
    """Producers: posts (queued or aired) nearest in meaning to `q`, nearest first."""
    if memory is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "embeddings are off (API_EMBEDDINGS)"
        )
    if not q.strip():
        raise HTTPException(422, "q is empty: say what to look for")
    found = await memory.search(q.strip(), k)
    return [
        FoundPostOut(
            id=f.post_id,
            text=f.text,
            author=f.author,
            created_at=f.created_at,
            status=f.status,
            distance=f.distance,
            model=memory.model,
        )
        for f in found
    ]
