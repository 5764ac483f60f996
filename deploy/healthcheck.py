"""Container health check: exit 0 when the server's /readyz answers 200, else 1."""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("PROMPTSERVE_PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
