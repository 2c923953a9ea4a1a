#!/usr/bin/env python3
"""The LDIF of exactly the changes that turn directory BEFORE into AFTER.

    ldif_diff.py BEFORE.ldif AFTER.ldif CHANGES.ldif

Both inputs are `ldapsearch -LLL` dumps (user attributes plus
pwdAccountLockedTime) of the same subtrees. Written the way an admin would
send them with `ldapmodify -c`: new entries as adds, a moved entry (same uid,
another container) as one modrdn with newsuperior, changed attributes as one
modify per entry, and group memberships as ONE modify per group (all values
deleted, then all added). Prints what it wrote. Used by benches/ldap.sh for
the P1 baseline; the bench then checks the baseline server equals dirsync's.
"""
import base64
import sys


def entries(path):
    """dn -> {attr (lower case): [values]} of an -LLL dump."""
    out, dn, attrs = {}, None, {}
    lines = open(path, encoding="utf-8").read().split("\n")
    # Unfold continuation lines first.
    unfolded = []
    for line in lines:
        if line.startswith(" ") and unfolded:
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    for line in unfolded + [""]:
        if not line:
            if dn is not None:
                out[dn] = attrs
            dn, attrs = None, {}
            continue
        if line.startswith("#"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8")
        else:
            value = value.strip()
        if name.lower() == "dn":
            dn = value
        else:
            attrs.setdefault(name.lower(), []).append(value)
    return out


def key(dn):
    return dn.lower()


def ldif_value(name, value):
    if value and (value[0] in " :<" or value[-1] == " " or not value.isascii()):
        return f"{name}:: {base64.b64encode(value.encode()).decode()}\n"
    return f"{name}: {value}\n"


def main(before_path, after_path, changes_path):
    before, after = entries(before_path), entries(after_path)
    b_keys = {key(d): d for d in before}
    a_keys = {key(d): d for d in after}
    by_uid = {}
    for d, attrs in before.items():
        for u in attrs.get("uid", []):
            by_uid[u.lower()] = d
    adds, moves, modifies, groups = [], [], [], []
    moved_from = set()
    for d, attrs in after.items():
        if key(d) in b_keys:
            continue
        old = next((by_uid[u.lower()] for u in attrs.get("uid", []) if u.lower() in by_uid), None)
        if old is not None and key(old) not in a_keys:
            moved_from.add(key(old))
            rdn, _, parent = d.partition(",")
            moves.append((old, rdn, parent, d))
        else:
            adds.append(d)
    n_deletes = 0
    out = open(changes_path, "w", encoding="utf-8")
    for d in adds:
        out.write(f"dn: {d}\nchangetype: add\n")
        for name, values in after[d].items():
            for v in values:
                out.write(ldif_value(name, v))
        out.write("\n")
    for old, rdn, parent, _ in moves:
        out.write(f"dn: {old}\nchangetype: modrdn\nnewrdn: {rdn}\ndeleteoldrdn: 1\nnewsuperior: {parent}\n\n")
    pairs = [(b_keys[key(d)], d) for d in after if key(d) in b_keys]
    pairs += [(old, new) for old, _, _, new in moves]
    for old, new in pairs:
        b, a = before[old], after[new]
        is_group = "member" in a or "member" in b
        lines = []
        for name in sorted(set(a) | set(b)):
            bv, av = b.get(name, []), a.get(name, [])
            if name == "member":
                after_set, before_set = {x.lower() for x in av}, {x.lower() for x in bv}
                gone = [v for v in bv if v.lower() not in after_set]
                came = [v for v in av if v.lower() not in before_set]
                if gone:
                    lines.append("delete: member\n" + "".join(ldif_value("member", v) for v in gone) + "-\n")
                if came:
                    lines.append("add: member\n" + "".join(ldif_value("member", v) for v in came) + "-\n")
            elif sorted(bv) != sorted(av):
                lines.append(f"replace: {name}\n" + "".join(ldif_value(name, v) for v in av) + "-\n")
        if lines:
            (groups if is_group else modifies).append((new, lines))
    for d, lines in modifies + groups:
        out.write(f"dn: {d}\nchangetype: modify\n" + "".join(lines) + "\n")
    for d in before:
        if key(d) not in a_keys and key(d) not in moved_from:
            out.write(f"dn: {d}\nchangetype: delete\n\n")
            n_deletes += 1
    print(
        f"changes: {len(adds)} adds, {len(moves)} moves, {len(modifies)} entry modifies, "
        f"{len(groups)} group modifies, {n_deletes} deletes"
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
