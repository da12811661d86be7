"""A server's share of joins, as a separate process: lease each name given
on stdin (one per line) and print one JSON line per join: the name and its
addresses, or the error.  Usage: python joiner.py ENDPOINTS PREFIX"""

import json
import sys

from lvn import LvnError
from lvn.etcd import Etcd
from lvn.etcdleases import EtcdLeases


def main() -> None:
    leases = EtcdLeases(Etcd(sys.argv[1].split(","), timeout=1.0), sys.argv[2],
                        "10.77.0.0/20", "fd77::/64")
    for line in sys.stdin:
        name = line.strip()
        try:
            out = {"name": name, "addresses": leases.lease(name)}
        except LvnError as e:
            out = {"name": name, "error": str(e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
