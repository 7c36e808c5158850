"""The shipped systemd unit (systemd/jvs-mount@.service), read as systemd reads it."""

from __future__ import annotations

import configparser

from conftest import ROOT

UNIT = ROOT / "systemd" / "jvs-mount@.service"

# Each of these gives the service a mount namespace of its own (systemd.exec(5)): a FUSE
# mount made inside it is invisible to the host, which sees an empty directory, and the
# unit's own ExecStopPost= could not clear a stale one.
NAMESPACING = {
    "PrivateTmp", "PrivateMounts", "PrivateDevices", "PrivateUsers", "PrivateNetwork",
    "ProtectSystem", "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
    "ProtectProc", "ProcSubset", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths",
    "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths",
    "RootDirectory", "RootImage", "MountFlags", "DynamicUser", "MountAPIVFS",
    "NetworkNamespacePath", "IPCNamespacePath", "PrivateIPC",
}


def _service() -> dict[str, list[str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"), delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return {key: [v for v in value.split("\n") if v] for key, value in
            parser["Service"].items()}


def test_the_unit_keeps_the_mount_visible_to_the_host():
    service = _service()
    bad = sorted(key for key, values in service.items() if key in NAMESPACING
                 and not all(v.strip().lower() in ("no", "false", "0") for v in values))
    assert not bad, f"these options hide the view's mount from the host: {bad}"


def test_the_unit_runs_in_the_foreground_with_room_for_open_files():
    service = _service()
    assert service["Type"] == ["notify"]
    assert "--foreground" in service["ExecStart"][0]
    assert "jvs umount" in service["ExecStopPost"][0]
    (limit,) = service["LimitNOFILE"]
    hard = limit.split(":")[-1]
    assert hard == "infinity" or int(hard) >= 65536
