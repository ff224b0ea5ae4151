"""A small real GraphQL server (strawberry-graphql under uvicorn) for
tests/integration/test_graphql.py: books and authors (a cycle, for depth),
variables, a field whose resolver fails (GraphQL errors with partial data),
mutations that count themselves (so a test can prove a refused one was never
sent), a subscription, and bearer-token auth on every request (so
introspection at start-up and every call must carry codemode's credential).
With LOG, every request body that passes the token check is appended to that
file as one JSON line, exactly as received (tests/hostile judges by it).

    python graphql_server.py PORT TOKEN [LOG]
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import AsyncGenerator, Optional

import strawberry
import uvicorn
from strawberry.asgi import GraphQL
from strawberry.types import Info

STATE = {"mutations": 0, "books": {}}


@strawberry.type
class Author:
    name: str

    @strawberry.field
    def books(self) -> list["Book"]:
        return [b for b in STATE["books"].values() if b.author_name == self.name]


@strawberry.type
class Book:
    id: strawberry.ID
    title: str
    year: Optional[int]
    author_name: strawberry.Private[str]

    @strawberry.field
    def author(self) -> Author:
        return Author(name=self.author_name)

    @strawberry.field(description="Never readable: its resolver fails.")
    def secret_note(self) -> Optional[str]:
        raise PermissionError("secretNote is not readable")


def _seed():
    for i, (title, year, author) in enumerate(
        [("Dune", 1965, "Frank Herbert"), ("Children of Dune", 1976, "Frank Herbert"), ("Neuromancer", 1984, "William Gibson")],
        start=1,
    ):
        STATE["books"][str(i)] = Book(id=strawberry.ID(str(i)), title=title, year=year, author_name=author)


@strawberry.type
class Query:
    @strawberry.field(description="One book by id.")
    def book(self, id: strawberry.ID) -> Optional[Book]:
        return STATE["books"].get(str(id))

    @strawberry.field(description="Books, in id order.")
    def books(self, first: int = 10) -> list[Book]:
        return list(STATE["books"].values())[:first]

    @strawberry.field(description="How many mutations the server has executed.")
    def mutation_count(self) -> int:
        return STATE["mutations"]

    @strawberry.field(description="The Authorization header this request came with.")
    def echo_authorization(self, info: Info) -> str:
        return info.context["request"].headers.get("authorization", "")


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Add a book.")
    def add_book(self, title: str, author: str, year: Optional[int] = None) -> Book:
        STATE["mutations"] += 1
        book_id = str(len(STATE["books"]) + 1)
        book = Book(id=strawberry.ID(book_id), title=title, year=year, author_name=author)
        STATE["books"][book_id] = book
        return book

    @strawberry.mutation(description="Delete a book.")
    def delete_book(self, id: strawberry.ID) -> bool:
        STATE["mutations"] += 1
        return STATE["books"].pop(str(id), None) is not None


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        for i in range(3):
            yield i
            await asyncio.sleep(0.01)


def main() -> None:
    port, token = int(sys.argv[1]), sys.argv[2]
    log = open(sys.argv[3], "ab", buffering=0) if len(sys.argv) > 3 else None
    _seed()
    graphql = GraphQL(strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription))

    async def app(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != f"Bearer {token}":
                body = json.dumps({"errors": [{"message": "bad or missing bearer token"}]}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        if log is None or scope["type"] != "http":
            await graphql(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording():
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    body = b"".join(chunks)
                    if body:
                        log.write(json.dumps(body.decode("utf-8", "replace")).encode() + b"\n")
            return message

        await graphql(scope, recording, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
