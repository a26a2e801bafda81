"""Administration from the command line, through a server's API."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.harness import Server, cli


def test_first_start_prints_the_admin_token_once_and_keeps_it_owner_only(home: Path) -> None:
    srv = Server(home)
    srv.start()
    srv.stop()
    srv.start()
    try:
        out = (home / "server.out").read_text()
        assert out.count("admin token (shown once") == 1
        assert srv.token in out
        mode = stat.S_IMODE((home / "admin.token").stat().st_mode)
        assert mode == 0o600
    finally:
        srv.stop()


def test_login_then_manage_projects_members_tokens_and_audit(
    server: Server, home: Path, tmp_path: Path
) -> None:
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_CONFIG_DIR": str(tmp_path / "cfg")}
    login = cli(home, "login", server.url, input=server.token + "\n", **env)
    assert login.returncode == 0, login.stderr
    assert "logged in" in login.stderr and "as admin" in login.stderr
    assert server.token not in login.stdout + login.stderr  # never echoed
    creds = tmp_path / "cfg" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600

    assert cli(home, "projects", "create", "gamma", **env).returncode == 0
    projects = json.loads(cli(home, "projects", "list", "--json", **env).stdout)
    assert {"name": "gamma", "role": "admin"} in projects

    added = cli(home, "--project", "gamma", "members", "add", "dana", "operator", **env)
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli(home, "--project", "gamma", "members", "list", "--json", **env).stdout)
    assert {"user": "dana", "role": "operator"} in listed

    made = cli(home, "tokens", "create", "ci-bot", "--user", "dana", **env)
    assert made.returncode == 0, made.stderr
    dana = made.stdout.strip()
    assert dana.startswith("lst_")
    # dana can run in gamma with her own token, and cannot administer it
    as_dana = {**env, "LOCKSTEP_TOKEN": dana, "LOCKSTEP_PROJECT": "gamma"}
    wf = tmp_path / "workflow.yaml"
    wf.write_text("name: dana-run\nsteps:\n  a: {run: 'echo hi'}\n")
    ran = cli(home, "run", str(wf), "--json", **as_dana)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["triggered_by"] == "user:dana"
    denied = cli(home, "members", "add", "eve", "admin", **as_dana)
    assert denied.returncode == 1
    assert "members:write needs the admin role; you are operator in 'gamma'" in denied.stderr
    hidden = cli(home, "--project", "default", "runs", "list", **{**as_dana})
    assert hidden.returncode == 1 and "project 'default' not found" in hidden.stderr

    tokens = json.loads(cli(home, "tokens", "list", "--json", **env).stdout)
    bot = next(t for t in tokens if t["name"] == "ci-bot")
    assert "token" not in bot and dana not in json.dumps(tokens)
    assert cli(home, "tokens", "revoke", bot["id"], **env).returncode == 0
    after = cli(home, "runs", "list", **as_dana)
    assert after.returncode == 1 and "token revoked" in after.stderr

    audit = json.loads(cli(home, "--project", "gamma", "audit", "--json", **env).stdout)
    assert any(
        e["action"] == "PUT /api/v1/projects/gamma/members" and e["user"] == "admin" for e in audit
    )


def test_no_auth_refuses_a_non_loopback_address(home: Path) -> None:
    proc = cli(home, "server", "--no-auth", "--host", "0.0.0.0", "--port", "0", timeout=30)
    assert proc.returncode == 1
    assert "--no-auth is for loopback" in proc.stderr
    assert not (home / "lockstep.db").exists()


def test_a_token_is_required_without_login(server: Server, home: Path, tmp_path: Path) -> None:
    proc = cli(
        home, "runs", "list", LOCKSTEP_URL=server.url, LOCKSTEP_CONFIG_DIR=str(tmp_path / "empty")
    )
    assert proc.returncode == 1
    assert "missing token" in proc.stderr


def test_repos_and_definitions_from_the_command_line(
    server: Server, home: Path, tmp_path: Path
) -> None:
    import subprocess

    bare, work = tmp_path / "cli.git", tmp_path / "cli-work"
    g = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*g, "init", "--bare", str(bare)], check=True, capture_output=True)
    subprocess.run([*g, "clone", str(bare), str(work)], check=True, capture_output=True)
    (work / "workflow.yaml").write_text("name: from-cli\nsteps:\n  a:\n    rnu: x\n")
    for cmd in (
        ["checkout", "-b", "main"],
        ["add", "-A"],
        ["commit", "-m", "c"],
        ["push", "origin", "main"],
    ):
        subprocess.run([*g, *cmd], cwd=work, check=True, capture_output=True)
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    added = cli(home, "repos", "add", f"file://{bare}", "--name", "cli-repo", **env)
    assert added.returncode == 0, added.stderr
    scanned = cli(home, "repos", "scan", "cli-repo", **env)
    assert scanned.returncode == 0, scanned.stderr
    shown = cli(home, "definitions", "show", "from-cli", **env)
    assert shown.returncode == 0, shown.stderr
    assert "main @" in shown.stdout and "invalid" in shown.stdout
    assert "workflow.yaml:4:5: unknown key 'rnu'; did you mean 'run'?" in shown.stdout
    refused = cli(home, "repos", "add", "ext::sh -c id", "--name", "evil", **env)
    assert refused.returncode == 2  # a refused request, not a failure
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
