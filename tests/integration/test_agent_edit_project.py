"""The edit tool on real code: a multi-file Python project is fixed, refactored and extended with
the edit tool only, then its own test suite runs green in a real ``python -m pytest`` subprocess."""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path

import pytest

from loopcraft.agent.tools.base import ToolContext, ToolResult
from loopcraft.agent.tools.bash import BashTool
from loopcraft.agent.tools.edit import EditTool
from loopcraft.agent.tools.search import GrepTool
from loopcraft.config import AgentConfig

PROJECT = {
    "pyproject.toml": """\
        [tool.pytest.ini_options]
        testpaths = ["tests"]
        """,
    "shop/__init__.py": """\
        \"\"\"A tiny shop.\"\"\"
        from shop.pricing import apply_discount, compute_total

        __all__ = ["apply_discount", "compute_total"]
        """,
    "shop/pricing.py": """\
        \"\"\"Prices.\"\"\"


        def compute_total(prices, tax_rate):
            \"\"\"Sum of prices with tax added.\"\"\"
            subtotal = sum(prices)
            return round(subtotal * tax_rate, 2)


        def apply_discount(total, percent):
            if percent < 0 or percent > 100:
                raise ValueError("percent must be between 0 and 100")
            return round(total * (100 - percent) / 100, 2)
        """,
    "shop/cart.py": """\
        \"\"\"A shopping cart.\"\"\"
        from shop.pricing import compute_total


        class Cart:
            def __init__(self, tax_rate=0.2):
                self.tax_rate = tax_rate
                self.items = {}

            def add(self, name, price):
                self.items[name] = price

            def total(self):
                return compute_total(list(self.items.values()), self.tax_rate)
        """,
    "tests/test_pricing.py": """\
        import pytest

        from shop import apply_discount, compute_total


        def test_total_adds_tax():
            assert compute_total([10, 20], 0.1) == 33.0


        def test_total_of_nothing():
            assert compute_total([], 0.2) == 0


        def test_discount():
            assert apply_discount(50, 10) == 45.0
            with pytest.raises(ValueError):
                apply_discount(50, 120)
        """,
    "tests/test_cart.py": """\
        from shop.cart import Cart


        def test_cart_total():
            cart = Cart(tax_rate=0.5)
            cart.add("apple", 2)
            cart.add("pear", 4)
            assert cart.total() == 9.0
        """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop-project"
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


async def run_tests(ctx: ToolContext) -> ToolResult:
    command = f"PYTHONPATH=. PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"
    return await BashTool().run({"command": command, "timeout": 60}, ctx)


async def edit(ctx: ToolContext, path: str, **args) -> ToolResult:
    result = await EditTool().run({"path": path, **args}, ctx)
    assert not result.is_error, result.output
    return result


async def test_edit_tool_fixes_refactors_and_extends_a_real_project(project: Path) -> None:
    ctx = ToolContext(workspace=project, config=AgentConfig(bash_timeout=120))

    before = await run_tests(ctx)
    assert before.metadata["exit_code"] != 0, before.output
    assert "test_total_adds_tax" in before.output and "failed" in before.output

    # 1. Fix the bug (tax must be added, not multiplied in place of the subtotal).
    fix = await edit(
        ctx,
        "shop/pricing.py",
        old_string="round(subtotal * tax_rate, 2)",
        new_string="round(subtotal * (1 + tax_rate), 2)",
    )
    assert "+    return round(subtotal * (1 + tax_rate), 2)" in fix.metadata["diff"]

    # 2. Rename compute_total -> total_price across every file.
    await edit(
        ctx,
        "shop/pricing.py",
        old_string="def compute_total(prices, tax_rate):",
        new_string="def total_price(prices, tax_rate):",
    )
    await edit(
        ctx, "shop/__init__.py", old_string="compute_total", new_string="total_price", replace_all=True
    )
    await edit(
        ctx,
        "shop/cart.py",
        edits=[
            {
                "old_string": "from shop.pricing import compute_total",
                "new_string": "from shop.pricing import total_price",
            },
            {"old_string": "return compute_total(", "new_string": "return total_price("},
        ],
    )
    await edit(
        ctx, "tests/test_pricing.py", old_string="compute_total", new_string="total_price", replace_all=True
    )
    leftovers = await GrepTool().run({"pattern": r"\bcompute_total\b"}, ctx)
    assert "no matches" in leftovers.output, leftovers.output

    # 3. Add a feature: Cart.remove, given without indentation (whitespace-tolerant anchor).
    feature = await edit(
        ctx,
        "shop/cart.py",
        old_string="def add(self, name, price):\n    self.items[name] = price\n",
        new_string=(
            "def add(self, name, price):\n    self.items[name] = price\n\n"
            "def remove(self, name):\n"
            "    if name not in self.items:\n"
            '        raise KeyError(f"{name} is not in the cart")\n'
            "    del self.items[name]\n"
        ),
    )
    assert "ignoring whitespace" in feature.output
    await edit(
        ctx,
        "tests/test_cart.py",
        old_string="    assert cart.total() == 9.0\n",
        new_string=(
            "    assert cart.total() == 9.0\n\n\n"
            "def test_cart_remove():\n"
            "    cart = Cart(tax_rate=0)\n"
            '    cart.add("apple", 2)\n'
            '    cart.add("pear", 4)\n'
            '    cart.remove("apple")\n'
            "    assert cart.total() == 4\n"
        ),
    )

    # 4. Repeating an edit is recognised and changes nothing.
    cart_text = (project / "shop/cart.py").read_text()
    repeat = await edit(
        ctx, "shop/cart.py", old_string="return compute_total(", new_string="return total_price("
    )
    assert "already applied" in repeat.output
    assert (project / "shop/cart.py").read_text() == cart_text

    # 5. A failed multi-edit leaves the file untouched.
    bad = await EditTool().run(
        {
            "path": "shop/pricing.py",
            "edits": [
                {"old_string": "def total_price", "new_string": "def grand_total"},
                {"old_string": "def no_such_function", "new_string": "x"},
            ],
        },
        ctx,
    )
    assert bad.is_error and "def total_price" in (project / "shop/pricing.py").read_text()

    after = await run_tests(ctx)
    assert after.metadata["exit_code"] == 0, after.output
    assert "5 passed" in after.output
