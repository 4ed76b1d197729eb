"""Which operations of the served document a role's contract run tests in
depth, and which it only checks are refused properly.

    python plan.py OPENAPI_JSON ACCESS_ROLES_CSV ROLE deep|refused

prints one `METHOD /path` a line. `docs/access-roles.csv` says, per
operation and role, whether the role passes the route's gate (`ok`) or is
refused (`401`, `403`). An operation the role passes, or one the table does
not list, is tested in depth (every phase); the refused ones get a short
fuzzing pass, enough to see that the refusal is the documented answer.
"""

import csv
import json
import sys

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def operations(doc):
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}"


def refused(table_path, role):
    try:
        with open(table_path, newline="", encoding="utf-8") as f:
            rows = csv.reader(line for line in f if not line.startswith("#"))
            header = next(rows)
            column = header.index(role)
            return {
                f"{row[0]} {row[1]}"
                for row in rows
                if len(row) > column and row[column].strip() in ("401", "403")
            }
    except (OSError, StopIteration, ValueError):
        # No table (or no column for the role): everything in depth.
        return set()


def main():
    doc_path, table_path, role, which = sys.argv[1:5]
    with open(doc_path, encoding="utf-8") as f:
        doc = json.load(f)
    no = refused(table_path, role)
    for label in operations(doc):
        if (label in no) == (which == "refused"):
            print(label)


if __name__ == "__main__":
    main()
