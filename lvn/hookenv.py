"""The environment of an up/down hook script (documented in docs/config.md).

Pure and MicroPython-friendly: both agents build it here (lvn/hooks.py runs
the scripts on CPython, lvn/node.py on MicroPython).
"""


def hook_env(event: str, role: str, ifname: str, peer: str, addresses: list[str],
             endpoint: tuple[str, int] | None, tunnel_id: int | None) -> dict[str, str]:
    """The LVN_* variables a hook sees."""
    env = {"LVN_EVENT": event, "LVN_ROLE": role, "LVN_IFNAME": ifname, "LVN_PEER": peer,
           "LVN_ADDRESSES": " ".join(addresses)}
    for a in addresses:
        env["LVN_ADDRESS6" if ":" in a else "LVN_ADDRESS4"] = a
    if endpoint is not None:
        env["LVN_ENDPOINT_ADDRESS"], env["LVN_ENDPOINT_PORT"] = endpoint[0], str(endpoint[1])
    if tunnel_id is not None:
        env["LVN_TUNNEL_ID"] = str(tunnel_id)
    return env
