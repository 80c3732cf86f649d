"""The job store on its own (no server), and the core package without the server's framework."""

import ast
import json
import sqlite3
from pathlib import Path

import ltx2
from ltx2.serve.store import Store


def test_the_package_imports_the_server_only_when_it_serves():
    """No module outside ltx2.serve imports the server's framework, and ltx2.serve is imported only inside the
    function that runs `ltx2 serve` (so `import ltx2` and the other commands work without the extra)."""
    package = Path(ltx2.__file__).parent
    for path in package.rglob("*.py"):
        if "serve" in path.relative_to(package).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{'.' * node.level}{node.module or ''}"]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("fastapi", "uvicorn", "starlette", "multipart"), (path, name)
                if name.lstrip(".").startswith(("serve", "ltx2.serve")):
                    assert id(node) not in top_level, (path, name)


def test_recovery_requeues_once_then_fails_and_drops_partial_files(tmp_path):
    store = Store(tmp_path)
    settings = {"prompt": "a cat"}
    ids = []
    for _ in range(3):
        job_id, folder = store.new_folder()
        store.add(job_id, settings, max_queue=10)
        ids.append(job_id)
    first = store.start_next()
    (store.folder(first.id) / ".video.abc.partial.mp4").write_bytes(b"half")
    orphan = store.videos / "video_000000000000000000000000"
    orphan.mkdir()
    assert store.recover() == [first.id]  # died once: queued again, its partial file gone
    assert store.get(first.id).status == "queued" and not any(store.folder(first.id).iterdir())
    assert not orphan.exists()
    assert store.start_next().id == first.id and store.get(first.id).attempts == 2
    assert store.recover() == []  # died again: failed, with the reason
    failed = store.get(first.id)
    assert failed.status == "failed" and failed.error["code"] == "interrupted"
    assert [store.get(job_id).status for job_id in ids[1:]] == ["queued", "queued"]
    store.close()
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as database:
        (row,) = database.execute("SELECT settings FROM videos WHERE id = ?", (ids[1],)).fetchall()
    assert json.loads(row[0]) == settings
