"""A real MCP client (the official Python SDK, PyPI `mcp`) against aidocs' MCP server.

Usage:
  mcp_client.py http URL KEY EXPECT_WRITE PAGE_URL
  mcp_client.py stdio EXPECT_WRITE PAGE_URL -- COMMAND ARGS...

Initializes, lists the tools (names and input schemas), calls every read tool with good and
bad arguments, calls an unknown tool, and calls the write tools: refused unless
EXPECT_WRITE is 1. Prints one JSON line with what it saw and exits 0; any assertion that
fails exits non-zero with the reason on stderr.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError

READ_TOOLS = {"search_docs", "get_section", "get_page", "list_libraries", "resolve_library"}
WRITE_TOOLS = {"ingest_docs", "job_status", "sync_library", "remove_docs"}


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def call(session, name, args):
    result = await session.call_tool(name, args)
    return bool(result.is_error), text_of(result)


async def check(session, expect_write, page_url):
    seen = {}
    await session.initialize()
    tools = (await session.list_tools()).tools
    names = {t.name for t in tools}
    assert READ_TOOLS <= names, f"read tools missing: {READ_TOOLS - names}"
    if expect_write:
        assert WRITE_TOOLS <= names, f"write tools not listed for a writer: {WRITE_TOOLS - names}"
    else:
        assert not (WRITE_TOOLS & names), f"write tools listed to a reader: {WRITE_TOOLS & names}"
    for t in tools:
        schema = t.input_schema
        assert schema.get("type") == "object", f"{t.name}: schema is not an object: {schema}"
        assert t.description and len(t.description) > 40, f"{t.name}: no real description"
    search = next(t for t in tools if t.name == "search_docs")
    assert "query" in search.input_schema.get("required", []), search.input_schema
    assert "max_tokens" in search.input_schema["properties"], search.input_schema
    seen["tools"] = sorted(names)

    # search_docs: good arguments.
    err, text = await call(session, "search_docs", {"query": "how do I create a virtual environment", "max_tokens": 800})
    assert not err, text
    newest = os.environ.get("EXPECT_NEWEST_VERSION")
    if newest:
        assert text.startswith(f"Version {newest}, the newest indexed"), text[:300]
        assert f"library: docs, version: {newest}" in text and "version: 3.11" not in text, text[:600]
    assert "venv" in text.lower(), text[:500]
    assert "id: " in text and "<" in text, text[:500]
    seen["search_chars"] = len(text)
    section_id = text.split("id: ", 1)[1].split()[0]

    # Bad arguments: a tool result with isError naming the argument.
    for args, needle in [
        ({}, "query"),
        ({"query": "venv", "limit": "ten"}, "limit"),
        ({"query": "venv", "max_tokens": 5}, "max_tokens"),
        ({"query": "venv", "bogus": 1}, "bogus"),
    ]:
        err, text = await call(session, "search_docs", args)
        assert err, f"search_docs {args} should fail: {text[:200]}"
        assert needle in text, f"search_docs {args}: error does not name `{needle}`: {text}"

    # get_section by a result id, and by a link.
    err, text = await call(session, "get_section", {"url_or_id": section_id})
    assert not err, text
    assert "next:" in text or "previous:" in text, text[:500]
    err, text = await call(session, "get_section", {"url_or_id": page_url + "#no-such-anchor"})
    assert err and "no-such-anchor" in text, text

    # get_page, paged by cursor.
    err, first = await call(session, "get_page", {"url": page_url, "max_tokens": 400})
    assert not err, first
    assert "read on with cursor" in first, first[-300:]
    cursor = int(first.rsplit("cursor ", 1)[1].split("]")[0])
    err, second = await call(session, "get_page", {"url": page_url, "cursor": cursor, "max_tokens": 400})
    assert not err and second != first, second[:300]
    err, text = await call(session, "get_page", {"url": "https://nowhere.invalid/page.html"})
    assert err and "nowhere.invalid" in text, text

    # list_libraries and resolve_library.
    err, text = await call(session, "list_libraries", {})
    assert not err, text
    libraries = json.loads(text)
    assert libraries and all("versions" in lib and "chunks" in lib for lib in libraries), text
    err, text = await call(session, "resolve_library", {"name": libraries[0]["name"] + "@99.0"})
    assert not err, text
    resolved = json.loads(text)
    assert resolved["version"] is None and "99.0" in resolved["note"], text
    err, text = await call(session, "resolve_library", {})
    assert err and "name" in text, text

    # An unknown tool is a protocol error, not a tool result.
    try:
        await session.call_tool("no_such_tool", {})
        raise AssertionError("an unknown tool must be a protocol error")
    except MCPError as e:
        assert "no_such_tool" in str(e), str(e)

    # Write tools: refused to a reader, run for a writer.
    err, text = await call(session, "job_status", {"id": "job-nope"})
    if expect_write:
        assert err and "not_found" in text, text
        err, text = await call(session, "ingest_docs", {"library": "docs"})
        assert err and "path" in text, text
        # A job started: its message names the library and the job, which job_status knows.
        err, text = await call(session, "sync_library", {"library": "docs"})
        assert not err and "`docs`" in text, text
        job = text.split("started job ", 1)[1].split(":", 1)[0]
        err, status = await call(session, "job_status", {"id": job})
        assert not err and json.loads(status)["id"] == job, status
    else:
        assert err and "forbidden" in text, text
        err, text = await call(session, "remove_docs", {"library": "docs"})
        assert err and "forbidden" in text, text
    seen["ok"] = True
    return seen


async def main():
    mode = sys.argv[1]
    if mode == "http":
        url, key, expect_write, page_url = sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5]
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    seen = await check(session, expect_write, page_url)
    else:
        expect_write, page_url = sys.argv[2] == "1", sys.argv[3]
        cmd = sys.argv[sys.argv.index("--") + 1 :]
        params = StdioServerParameters(command=cmd[0], args=cmd[1:])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                seen = await check(session, expect_write, page_url)
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
