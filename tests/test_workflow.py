"""The publishing workflow (.github/workflows/book.yml) cannot run here: check what it would do.

It must build the whole book as a reader's machine does (no stand-in teacher, no small-data mode,
the install of README.md), with standard actions only, and deploy the HTML to GitHub Pages, whose
address intro.md gives.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from helpers.chapters import CHAPTERS, Chapter

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
STANDARD_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/upload-pages-artifact",
                    "actions/deploy-pages"}


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def pages_url() -> str:
    """The GitHub Pages address of _config.yml's repository."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, repo = config["repository"]["url"].rstrip("/").split("/")[-2:]
    return f"https://{owner.lower()}.github.io/{repo}/"


def test_workflow_is_valid_and_triggers_on_main() -> None:
    workflow = load_workflow()
    assert workflow["name"] and set(workflow["jobs"]) == {"build", "deploy"}
    assert "main" in workflow["on"]["push"]["branches"] and "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    for job in workflow["jobs"].values():
        assert job["runs-on"].startswith("ubuntu") and job["steps"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step  # each step does one thing
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"


def test_only_standard_actions_pinned_to_a_major_version() -> None:
    used = [step["uses"] for step in steps(load_workflow()) if "uses" in step]
    assert {use.split("@")[0] for use in used} == STANDARD_ACTIONS
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@v\d+", use) for use in used), used


def test_it_builds_the_whole_book_as_a_reader_does() -> None:
    workflow = load_workflow()
    build = workflow["jobs"]["build"]
    runs = "\n".join(step["run"] for step in build["steps"] if "run" in step)
    assert re.search(r"^jupyter-book build \.$", runs, flags=re.M)
    # README.md's install: the CPU-only torch of the pinned version, then the pins, then helpers.
    pinned_torch = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)[1]
    assert (f"pip install torch=={pinned_torch} --index-url https://download.pytorch.org/whl/cpu"
            in runs)
    assert "pip install -r requirements.txt" in runs and "pip install --no-deps -e ." in runs
    # No stand-in teacher, no small data, no local dataset: not in any env, not in any command.
    code = "\n".join(line for line in WORKFLOW.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))
    for variable in ("BOOK_TEACHER", "BOOK_SMALL", "BOOK_DATA"):
        assert variable not in code  # nowhere but in the comment that says so
        for holder in (workflow, build, *build["steps"]):
            assert variable not in (holder.get("env") or {})
    assert "STAND-IN TEACHER" in runs and "SMALL-DATA MODE" in runs  # the check that fails
    # The Try it page's libraries installed before the build, its models checked after it.
    assert runs.index("npm ci --prefix web") < runs.index("jupyter-book build .")
    assert "try_it_assets/manifest.json" in runs and '"standin": true' in runs
    python = next(step["with"]["python-version"] for step in build["steps"]
                  if step.get("uses", "").startswith("actions/setup-python"))
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    requires = re.search(r'^requires-python = "(.*)"$', project, flags=re.M)[1]
    assert Version(str(python)) in SpecifierSet(requires)


def test_it_deploys_the_html_that_was_built() -> None:
    workflow = load_workflow()
    upload = next(step for step in workflow["jobs"]["build"]["steps"]
                  if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]["steps"]
    assert [step["uses"].split("@")[0] for step in deploy] == ["actions/deploy-pages"]
    assert deploy[0]["id"] in workflow["jobs"]["deploy"]["environment"]["url"]


def test_intro_points_at_the_workflow_and_the_published_book() -> None:
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    sentence = re.search(r"The published book[^.]*\.[^.]*\.", intro, flags=re.S)
    assert sentence, "intro.md no longer says how the published book is built"
    assert pages_url() in intro and ".github/workflows/book.yml" in intro
    assert pages_url() in (ROOT / "README.md").read_text(encoding="utf-8")


def readme_chapter_minutes(readme: str) -> dict[Chapter, float]:
    """README.md's chapter table: each chapter's minutes on the full data on a 2-core CPU."""
    minutes = {}
    for chapter in CHAPTERS:
        row = re.search(rf"^\| {int(chapter.number)} \| `{re.escape(chapter.path)}` \|.*"
                        r"\| ([\d.]+) \|$", readme, flags=re.M)
        assert row, f"README.md's chapter table has no minutes for {chapter}"
        minutes[chapter] = float(row[1])
    return minutes


def test_the_build_job_has_time_for_the_whole_book() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    total = sum(readme_chapter_minutes(readme).values())  # every chapter timed
    stated = re.search(r"whole book took (\d+) minutes", readme)
    assert stated and abs(int(stated[1]) - total) <= 1, (stated and stated[1], total)
    # The runner (4 cores) is faster than the 2-core CPU timed, and GitHub stops a hosted job
    # after 360 minutes whatever the workflow asks.
    limit = load_workflow()["jobs"]["build"]["timeout-minutes"]
    assert total <= limit <= 360, (total, limit)
