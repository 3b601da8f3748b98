"""Headless listings of what sessions get beyond the built-in tools: ``loopcraft skills`` (the
discovered skills and the SKILL.md files that were skipped) and ``loopcraft mcp list`` (each
configured MCP server, started once to report its status and tools, then stopped)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from loopcraft.config import Config
from loopcraft.jsonout import dumps


def skills_data(root: Path) -> dict[str, Any]:
    from loopcraft.agent.skills import discover_skills

    found = discover_skills(root)
    return {
        "skills": [
            {
                "name": s.name,
                "description": s.description,
                "path": str(s.path),
                "source": s.source,
                "allowed_tools": s.allowed_tools,
            }
            for s in found.skills.values()
        ],
        "problems": [{"path": str(p.path), "problem": p.problem} for p in found.problems],
        "shadowed": [{"name": s.name, "path": str(s.path)} for s in found.shadowed],
    }


def print_skills(root: Path, *, as_json: bool) -> None:
    data = skills_data(root)
    if as_json:
        typer.echo(dumps(data))
        return
    if not data["skills"]:
        typer.echo("no skills (add .loopcraft/skills/<name>/SKILL.md)")
    for skill in data["skills"]:
        typer.echo(f"{skill['name']}  {skill['description']}  ({skill['source']})")
    for problem in data["problems"]:
        typer.echo(f"skipped {problem['path']}: {problem['problem']}", err=True)


async def mcp_data(root: Path, config: Config) -> list[dict[str, Any]]:
    from loopcraft.agent.mcp import McpSession

    servers = config.mcp.servers
    session = McpSession.from_config(servers, config.agent, root)
    rows: list[dict[str, Any]] = []
    try:
        defs, _ = await session.list_tools()
        for name, server_config in servers.items():
            live = session.servers.get(name)
            status = "disabled" if live is None else ("ok" if live.status == "running" else live.status)
            rows.append(
                {
                    "name": name,
                    "transport": "stdio" if server_config.command else "http",
                    "status": status,
                    "error": live.error if live is not None and status != "ok" else "",
                    "tools": [
                        {"name": d.name, "read_only": d.read_only, "description": d.description}
                        for d in defs
                        if d.server == name
                    ],
                }
            )
    finally:
        await session.aclose()
    return rows


def print_mcp(root: Path, config: Config, *, as_json: bool) -> None:
    rows = asyncio.run(mcp_data(root, config))
    if as_json:
        typer.echo(dumps({"servers": rows}))
        return
    if not rows:
        typer.echo("no MCP servers (add [mcp.servers.NAME] to .loopcraft/config.toml)")
    for row in rows:
        detail = f"{len(row['tools'])} tools" if row["status"] == "ok" else row["error"] or row["status"]
        typer.echo(f"{row['name']}  {row['transport']}  {row['status']}  {detail}")
        for tool in row["tools"]:
            mark = " (read-only)" if tool["read_only"] else ""
            typer.echo(f"  {tool['name']}{mark}")
