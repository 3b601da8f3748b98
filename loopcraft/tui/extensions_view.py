"""The texts of the app's ``/skills``, ``/memory`` and ``/mcp`` commands, built from the chat
session's :class:`~loopcraft.agent.extensions.Extensions` (UI-free, so they are easy to test)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopcraft.tui.chat_session import ChatSession


def skills_text(chat: ChatSession) -> str:
    found = chat.extensions.skills
    lines = [f"{s.name}  {s.description}  ({s.source})" for s in found.skills.values()]
    lines += [p.line() for p in found.problems]
    if not found.skills:
        lines.insert(0, "no skills (add .loopcraft/skills/<name>/SKILL.md)")
    else:
        lines.insert(0, "skills (/skills NAME loads one into your next message):")
    return "\n".join(lines)


def memory_text(chat: ChatSession) -> str:
    files = chat.extensions.memory
    if not files:
        names = " or ".join(chat.config.agent.memory_files) or "no files (agent.memory_files is empty)"
        return f"no project memory loaded (looked for {names} from the repo root to this folder)"
    lines = ["project memory in the system prompt:"]
    lines += [f"{m.path}  {len(m.text)} chars{' (cut)' if m.truncated else ''}" for m in files]
    return "\n".join(lines)


def mcp_text(chat: ChatSession) -> str:
    servers = chat.config.mcp.servers
    if not servers:
        return "no MCP servers (add [mcp.servers.NAME] to .loopcraft/config.toml)"
    live = chat.extensions.mcp.servers if chat.extensions.mcp is not None else {}
    tools = [t for t in (chat.agent.tools if chat.agent is not None else []) if t.name.startswith("mcp__")]
    lines = ["MCP servers (they start with the session's first message):"]
    for name in servers:
        server = live.get(name)
        status = "disabled" if server is None else server.status
        error = f": {server.error}" if server is not None and server.error else ""
        names = [t.name for t in tools if t.name.startswith(f"mcp__{name}__")]
        lines.append(f"{name}  {status}{error}  {len(names)} tools")
        lines += [f"  {n}" for n in names]
    return "\n".join(lines)
