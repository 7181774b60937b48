"""Producers edit the blocklist that moderation applies to every new post and nickname
(the matching itself is pure: api/moderation.py)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field, field_validator

from api.deps import PoolDep, Producer
from api.errors import SIGNED_IN
from api.moderation import clean_term
from db.queries import load

router = APIRouter(
    prefix="/api/blocklist",
    tags=["moderation"],
    responses={**SIGNED_IN, 404: {"description": "that term is not blocked"}},
)
queries = load("blocklist.sql")


class TermIn(BaseModel):
    term: str = Field(examples=["spoiler"])

    @field_validator("term")
    @classmethod
    def _term(cls, value: str) -> str:
        return clean_term(value)


class TermOut(BaseModel):
    term: str
    created_at: datetime


@router.get("", response_model=list[TermOut])
async def list_terms(_: Producer, pool: PoolDep) -> list[TermOut]:
    """Producers: the blocked words and phrases."""
    async with pool.connection() as conn:
        return [TermOut(term=t, created_at=c) async for t, c in queries.blocklist_terms(conn)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=list[TermOut])
async def add_term(body: TermIn, producer: Producer, pool: PoolDep) -> list[TermOut]:
    """Producers: block a word or phrase (whole words; any text in scripts without spaces)."""
    async with pool.connection() as conn:
        await queries.add_blocklist_term(conn, term=body.term, added_by=producer.id)
        return [TermOut(term=t, created_at=c) async for t, c in queries.blocklist_terms(conn)]


@router.delete("/{term}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_term(term: str, _: Producer, pool: PoolDep) -> Response:
    """Producers: unblock a word or phrase."""
    try:
        cleaned = clean_term(term)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    async with pool.connection() as conn:
        removed = await queries.remove_blocklist_term(conn, term=cleaned)
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "that term is not blocked")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
