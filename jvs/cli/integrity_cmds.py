"""verify, doctor, gc (plan, run, pin, unpin, pins), du."""

from __future__ import annotations

import sys

import click

from jvs.cli.common import locate, short, ui_of
from jvs.cli.completion import complete_snapshot_ref
from jvs.cli.output import human_size, json_option


def _fail(ctx: click.Context, error) -> None:
    """Exit 1 after the report was printed: the error line on stderr (the JSON document
    already carries it, so stdout stays one JSON value)."""
    ui = ui_of(ctx)
    click.echo(f"jvs: {error.code}: {error.message}", err=True)
    if error.hint and not ui.json:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(1)  # not ctx.exit: click returns its code to main() without exiting


def _verify_lines(result) -> list[str]:
    if not result.tamper_detected:
        return [f"{result.snapshot_id}  OK"]
    lines = [f"{result.snapshot_id}  TAMPERED  ({result.severity})"]
    lines += [f"  {p}" for p in result.problems]
    for c in result.changes[:50]:
        lines.append(f"  {c.change:<8} {c.path}")
    if len(result.changes) > 50:
        lines.append(f"  ... and {len(result.changes) - 50} more")
    return lines


@click.command()
@click.argument("ref", required=False, shell_complete=complete_snapshot_ref)
@click.option("--all", "all_snapshots", is_flag=True,
              help="Every snapshot, and the audit log's hash chain.")
@json_option
@click.pass_context
def verify(ctx, ref, all_snapshots):
    """Check snapshots: descriptor checksum and payload hash, naming changed files.

    Without REF, the current worktree's head. Exits 1 if anything was tampered with.

    \b
    Examples:
      jvs verify --all
      jvs verify baseline
      jvs verify HEAD~1 --json
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    loc = locate(ctx)
    if all_snapshots and ref:
        raise click.UsageError("give a REF or --all, not both")
    with ui.live() as progress:
        report = Repository(loc.repo, loc.worktree).verify(ref, all=all_snapshots,
                                                           progress=progress)
    error = report.error()
    lines = [line for r in report.results for line in _verify_lines(r)]
    lines += [f"{sid}  collected by gc while verify ran" for sid in report.collected]
    if report.audit_checked:
        if report.audit_problems:
            lines.append("audit log  BROKEN")
            lines += [f"  {p}" for p in report.audit_problems]
        else:
            lines.append("audit log  OK")
    if not report.results:
        lines.insert(0, "No snapshots to verify.")
    ui.emit(report.to_json(), "\n".join(lines))
    if error is not None:
        _fail(ctx, error)


@click.command()
@click.option("--strict", is_flag=True,
              help="Also check lineage, every payload hash and the audit chain.")
@click.option("--repair-runtime", is_flag=True,
              help="Repair runtime state: clean_tmp, clean_intents, advance_head, "
              "rebuild_index, finish_restore.")
@click.option("--repair", "repairs", multiple=True, metavar="ACTION",
              type=click.Choice(["clean_tmp", "clean_intents", "advance_head",
                                 "rebuild_index", "audit_repair", "finish_restore"]),
              help="Run one repair (repeatable).")
@json_option
@click.pass_context
def doctor(ctx, strict, repair_runtime, repairs):
    """Diagnose the repository; repair what crashes and copies leave behind.

    Prints 'Repository is healthy.' when nothing is found; exits 1 on any error or
    warning finding. Repairs take the repository lock and touch only files under .jvs/.

    \b
    Examples:
      jvs doctor --strict
      jvs doctor --strict --repair-runtime
      jvs doctor --repair audit_repair
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    loc = locate(ctx)
    with ui.live() as progress:
        report = Repository(loc.repo, loc.worktree).doctor(
            strict=strict, repair=repairs, repair_runtime=repair_runtime, progress=progress)
    for warning in report.warnings:
        ui.warn(warning)
    lines = []
    for item in report.repaired:
        lines.append(f"Repaired ({item.action}): " + "; ".join(item.items[:10])
                     + (f"; ... {len(item.items) - 10} more" if len(item.items) > 10
                        else ""))
    for op in report.in_flight:
        lines.append(f"In flight: {op}")
    for f in report.findings:
        fix = f" [repair: {f.repair}]" if f.repair else ""
        lines.append(f"{f.severity.upper()} {f.error_class} {f.check}: {f.message}{fix}")
    if report.healthy:
        lines.append("Repository is healthy.")
    ui.emit(report.to_json(), "\n".join(lines))
    serious = [f for f in report.findings if f.severity in ("error", "warning")]
    if serious:
        from jvs.errors import JvsError

        _fail(ctx, JvsError(serious[0].error_class if serious[0].error_class != "E_BUSY"
                            else "E_PARTIAL_SNAPSHOT",
                            f"{len(serious)} problem(s) found",
                            hint="'jvs doctor --repair-runtime' fixes runtime leftovers; "
                            "see docs/operations.md for the rest"))


@click.group()
def gc():
    """Collect snapshots no policy keeps: plan first, then run the plan.

    \b
    Examples:
      jvs gc plan --keep-daily 7 --keep-tagged
      jvs gc run --plan-id 3f9c0a7b12d4e856
      jvs gc pin baseline --reason "paper results" --expires 90d
    """


def _now_option(f):
    return click.option("--now", "now", hidden=True, default=None,
                        help="Pretend it is this time (tests); also JVS_GC_NOW.")(f)


@gc.command("plan")
@click.option("--keep-last", type=int, default=None, metavar="N",
              help="Keep the N newest snapshots of each worktree.")
@click.option("--keep-daily", type=int, default=None, metavar="N",
              help="Keep the newest snapshot of each of the last N days with snapshots.")
@click.option("--keep-weekly", type=int, default=None, metavar="N",
              help="Keep the newest snapshot of each of the last N weeks with snapshots.")
@click.option("--keep-days", type=int, default=None, metavar="N",
              help="Keep every snapshot younger than N days.")
@click.option("--keep-tagged/--no-keep-tagged", default=None,
              help="Keep tagged snapshots (default: yes).")
@_now_option
@json_option
@click.pass_context
def gc_plan(ctx, keep_last, keep_daily, keep_weekly, keep_days, keep_tagged, now):
    """Show what gc would delete, and a Plan ID to run it with.

    Retention given here replaces the configured one (config.json key "gc") and applies
    along the lineage: an old snapshot goes even if newer ones descend from it (each
    snapshot is a complete copy). Heads, latests, pins, tags (unless --no-keep-tagged),
    snapshots younger than 24 h and anything in flight are never candidates. Days and
    weeks are calendar days and ISO weeks in the local time zone.

    \b
    Example:
      jvs gc plan --keep-daily 7 --keep-tagged
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    loc = locate(ctx)
    repo = loc.repo
    plan = Repository(repo, loc.worktree).gc_plan(
        keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly,
        keep_days=keep_days, keep_tagged=keep_tagged, now=now)
    policy = plan.policy
    lines = ["GC Plan",
             f"  policy: keep-last {policy.keep_last}, keep-daily {policy.keep_daily}, "
             f"keep-weekly {policy.keep_weekly}, keep-days {policy.keep_days}, "
             f"keep-tagged {'yes' if policy.keep_tagged else 'no'}, "
             f"rescues expire after {policy.rescue_days:g} days",
             "  kept: " + (", ".join(f"{n} {r}" for r, n in sorted(plan.kept_reasons.items()))
                            or "none"),
             f"  to delete: {len(plan.candidates)} snapshot(s)",
             f"  frees: {_freed(plan.freed)}"]
    if plan.candidates and not ui.json:
        from jvs.catalog import load_descriptors
        from jvs.resolve import describe

        by_id = {d.snapshot_id: d for d in load_descriptors(repo)}
        for sid in plan.candidates[:20]:
            lines.append(f"    {describe(by_id[sid])}" if sid in by_id else f"    {sid}")
    if len(plan.candidates) > 20:
        lines.append(f"    ... and {len(plan.candidates) - 20} more")
    lines.append(f"Plan ID: {plan.plan_id}")
    lines.append(f"Run it with: jvs gc run --plan-id {plan.plan_id}")
    ui.emit(plan.to_json(), "\n".join(lines))


def _freed(freed) -> str:
    """What a run frees, saying how sure the figure is (jvs/space.py explains why)."""
    if freed.kind == "exact":
        return (f"{human_size(freed.exact_bytes)} (exact: files whose last link goes; "
                f"{human_size(freed.apparent_bytes)} of files listed)")
    shared = " and ".join(freed.shared_by)
    text = f"at most {human_size(freed.estimate)}"
    if freed.exact_bytes:
        text += f" ({human_size(freed.exact_bytes)} exact, the rest an upper bound)"
    return (f"{text}: {shared} may still be shared with kept snapshots, which the file "
            f"system does not report cheaply; {human_size(freed.apparent_bytes)} of files listed")


@gc.command("run")
@click.option("--plan-id", required=True, metavar="ID",
              help="The Plan ID printed by 'jvs gc plan' (surrounding blanks are ignored).")
@_now_option
@click.option("-n", "--dry-run", is_flag=True,
              help="Print what the run would delete (or why it would refuse); delete "
                   "nothing.")
@json_option
@click.pass_context
def gc_run(ctx, plan_id, now, dry_run):
    """Delete the candidates of a plan, if the repository still agrees with it.

    \b
    Example:
      PLAN_ID=$(jvs gc plan --keep-daily 7 --keep-tagged | grep "Plan ID:" | cut -d: -f2)
      jvs gc run --plan-id "$PLAN_ID"
      jvs gc run --plan-id "$PLAN_ID" --dry-run
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    repo = locate(ctx).repo
    if dry_run:
        from jvs.gc import gc_now
        from jvs.preview import gc_run_preview

        p = gc_run_preview(repo, plan_id, gc_now(now))
        if p.mismatch:
            human = f"Dry run: GC run {p.plan_id} would fail (E_GC_PLAN_MISMATCH): {p.mismatch}"
        else:
            human = "\n".join([f"Dry run: GC run {p.plan_id} would delete {len(p.deleted)} "
                               f"snapshot(s), about {human_size(p.bytes_estimate)}; nothing "
                               "changed.", *(f"  - {sid}" for sid in p.deleted)])
        ui.emit(p.to_json(), human)
        return
    with ui.live() as progress:
        result = Repository(repo).gc_run(plan_id, progress=progress, now=now)
    lines = []
    if result.finished_from_earlier:
        lines.append(f"Finished an interrupted run: {len(result.finished_from_earlier)} "
                     "snapshot(s) deleted")
    lines.append(f"GC run {result.plan_id}: deleted {len(result.collected)} snapshot(s), "
                 f"freed {_freed(result.freed)}")
    ui.emit(result.to_json(), "\n".join(lines))


@gc.command("pin")
@click.argument("ref", shell_complete=complete_snapshot_ref)
@click.option("--reason", default="", help="Why it must be kept.")
@click.option("--expires", default=None, metavar="WHEN",
              help="When the pin lapses: 30d, 12h, 2w, 2026-12-31 or an RFC 3339 time.")
@json_option
@click.pass_context
def gc_pin(ctx, ref, reason, expires):
    """Protect a snapshot from gc.

    \b
    Example:
      jvs gc pin baseline --reason "paper results" --expires 90d
    """
    from jvs.api import Repository

    loc = locate(ctx)
    record = Repository(loc.repo, loc.worktree).pin(ref, reason=reason, expires=expires)
    until = f" until {record.expires_at}" if record.expires_at else ""
    ui_of(ctx).emit(record.to_json(), f"Pinned {record.snapshot_id}{until}")


@gc.command("unpin")
@click.argument("ref", shell_complete=complete_snapshot_ref)
@json_option
@click.pass_context
def gc_unpin(ctx, ref):
    """Remove a pin.

    \b
    Example:
      jvs gc unpin baseline
    """
    from jvs.api import Repository

    loc = locate(ctx)
    done = Repository(loc.repo, loc.worktree).unpin(ref)
    ui_of(ctx).emit(done.to_json(), f"Unpinned {done.snapshot_id}")


@gc.command("pins")
@json_option
@click.pass_context
def gc_pins(ctx):
    """List pins (expired ones no longer protect anything).

    \b
    Example:
      jvs gc pins --json
    """
    from jvs.api import Repository

    pins = Repository(locate(ctx).repo).pins()
    lines = []
    for p in pins:
        state = "expired" if p.expired(pins.now) else "active"
        until = f" until {p.expires_at}" if p.expires_at else ""
        lines.append(f"{p.snapshot_id}  {state}{until}  {p.reason}")
    ui_of(ctx).emit(pins.to_json(), "\n".join(lines) or "No pins.")


@click.command()
@click.argument("refs", nargs=-1, metavar="[REF]...", shell_complete=complete_snapshot_ref)
@json_option
@click.pass_context
def du(ctx, refs):
    """Show the disk space of each snapshot and of the repository.

    EXCLUSIVE is what deleting that snapshot alone would free; SHARED is held by hard
    links other snapshots share with it (the copy engine links unchanged files). On
    reflink and JuiceFS clones data is also shared below the file level, which the file
    system does not report cheaply: EXCLUSIVE is then an upper bound, marked "<=".
    Each file is counted once for the repository, as du does.

    \b
    Examples:
      jvs du
      jvs du HEAD HEAD~1 --json
    """
    from jvs.api import Repository

    ui = ui_of(ctx)
    loc = locate(ctx)
    space = Repository(loc.repo, loc.worktree).du(*refs)
    rows = space.snapshots
    lines = [f"{'SNAPSHOT':<10} {'SIZE':>10} {'ON DISK':>10} {'EXCLUSIVE':>12} {'SHARED':>10}"]
    for r in rows:
        mark = "" if r.exact else "<="
        lines.append(f"{short(r.snapshot_id):<10} {human_size(r.apparent_bytes):>10} "
                     f"{human_size(r.allocated_bytes):>10} "
                     f"{mark + human_size(r.exclusive_bytes):>12} "
                     f"{human_size(r.shared_bytes):>10}")
    lines.append(f"Repository: {human_size(space.total_bytes)} on disk: snapshots "
                 f"{human_size(space.snapshots_bytes)}, "
                 f"worktrees {human_size(space.worktrees_bytes)}, "
                 f"control plane {human_size(space.control_plane_bytes)}")
    if space.shared_below_files:
        lines.append(f"  ({' and '.join(space.shared_below_files)} may be shared between "
                     "snapshots: the file system's own figure (df, 'juicefs status') is lower)")
    ui.emit(space.to_json(), "\n".join(lines))


COMMANDS = [verify, doctor, gc, du]
