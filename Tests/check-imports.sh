#!/usr/bin/env bash
# Tests/check-imports.sh — every `import` in Sources/ and Tests/ against the table of
# allowed imports in Sources/ARCHITECTURE.md (the one source of truth; nothing is listed here).
#
# Checks, in order:
#   1. the table itself: only test targets may use `*`; no product module may list a test
#      module, the test-support module, the executable, or a forbidden system module;
#   2. Package.swift: every target has a row, lives at Sources/NAME or Tests/NAME, is of the
#      kind its row says, and depends only on what its row allows; every row that is not
#      marked (planned) names a target, except a test row marked (outside Package.swift):
#      Swift built by a script of its own (the fuzz targets, Tests/Fuzz/build.sh);
#   3. every Sources/ directory, and every Tests/ directory holding Swift, has a row;
#   4. every `import X` (also `@testable`, `@_implementationOnly`, `public`/`internal`/…
#      import, `import struct X.Y`, and imports under `#if`) in their .swift files is allowed.
# One line per violation (`FILE:LINE: …`), then a summary line; exit 1 if any.
# Dependency-free: bash and python3 (which the e2e tests already use).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

DOC, PACKAGE = 'Sources/ARCHITECTURE.md', 'Package.swift'
violations = []
def violation(where, text): violations.append(f'{where}: {text}')

# --- 1. The tables in Sources/ARCHITECTURE.md ------------------------------------------
# | module | kind | may import |      one row per module; "NAME (planned)" may not exist yet
# | forbidden module | why |         system modules no product module may import
def cells(line): return [c.strip().replace('`', '') for c in line.strip().strip('|').split('|')]
def drop_notes(text):                    # "(to remove: …)", "(planned)", nested parentheses too
    while re.search(r'\([^()]*\)', text): text = re.sub(r'\([^()]*\)', '', text)
    return text

rows, forbidden, table = {}, {}, None
for n, line in enumerate(open(DOC, encoding='utf-8'), 1):
    if not line.lstrip().startswith('|'): table = None; continue
    c = cells(line)
    if [x.lower() for x in c] == ['module', 'kind', 'may import']: table = 'modules'; continue
    if [x.lower() for x in c[:1]] == ['forbidden module']: table = 'forbidden'; continue
    if table is None or set(''.join(c)) <= set('-: '): continue
    if table == 'forbidden':
        forbidden[c[0]] = c[1] if len(c) > 1 else ''
        continue
    if len(c) != 3: violation(f'{DOC}:{n}', f'a row needs 3 cells (module | kind | may import): {line.strip()}'); continue
    name, kind, allowed = drop_notes(c[0]).strip(), c[1], c[2]
    if kind not in ('C', 'library', 'executable', 'test support', 'test'):
        violation(f'{DOC}:{n}', f'{name}: unknown kind "{kind}" (C, library, executable, test support, test)')
    names = [x.strip() for x in drop_notes(allowed).split(',') if x.strip()]
    text = allowed[1:-1] if allowed.startswith('(') and allowed.endswith(')') else allowed
    outside = '(outside Package.swift)' in c[0]
    if outside and kind != 'test': violation(f'{DOC}:{n}', f'{name}: only a test row may be (outside Package.swift)')
    rows[name] = dict(line=n, kind=kind, planned='(planned)' in c[0] or outside, any=names == ['*'],
                      allowed=set(names) - {'*'}, text=text or 'nothing')
if not rows: sys.exit(f'{DOC}: no "| module | kind | may import |" table found')

product = {m for m, r in rows.items() if r['kind'] in ('C', 'library', 'executable')}
for m, r in rows.items():
    where = f'{DOC}:{r["line"]}'
    if r['any'] and r['kind'] != 'test': violation(where, f'{m}: only test targets may import anything (*)')
    if r['kind'] == 'test': continue
    for x in sorted(r['allowed']):
        k = rows.get(x, {}).get('kind')
        if x in forbidden: violation(where, f'{m} lists {x}, which no product module may import ({forbidden[x]})')
        elif k in ('test', 'test support') or (k == 'executable' and m != x):
            violation(where, f'{m} lists {x} ({k}), which only test targets may import')

def allows(m, x): return rows[m]['any'] or x in rows[m]['allowed']
def refusal(m, x):
    why = f'; {x} is forbidden: {forbidden[x]}' if x in forbidden and rows[m]['kind'] != 'test' else ''
    return f'{m} may not import {x} (allowed: {rows[m]["text"]}{why})'

# --- 2. Package.swift ----------------------------------------------------------------
src = re.sub(r'//[^\n]*', '', open(PACKAGE, encoding='utf-8').read())
def balanced(s, i):                       # s[i] is an opening ( or [; returns the inside
    depth, close = 0, {'(': ')', '[': ']'}[s[i]]
    for j in range(i, len(s)):
        depth += s[j] == s[i]; depth -= s[j] == close
        if depth == 0: return s[i + 1:j]
    return s[i + 1:]
KINDS = {'target': 'library', 'executableTarget': 'executable', 'testTarget': 'test', 'systemLibrary': 'C'}
targets, end = {}, 0
for mt in re.finditer(r'\.(target|executableTarget|testTarget|systemLibrary|binaryTarget|macro|plugin)\(', src):
    if mt.start() < end: continue          # `.target(name:)` inside a dependencies list
    body = balanced(src, mt.end() - 1); end = mt.end() + len(body)
    name = re.search(r'name:\s*"([^"]+)"', body).group(1)
    deps = re.search(r'dependencies:\s*\[', body)
    deps = balanced(body, deps.end() - 1) if deps else ''
    deps = re.sub(r'(package|condition):\s*(\.\w+\([^)]*\)|"[^"]*")', '', deps)
    path = re.search(r'path:\s*"([^"]+)"', body)
    kind = mt.group(1)
    targets[name] = dict(line=src.count('\n', 0, mt.start()) + 1, kind=kind, deps=re.findall(r'"([^"]+)"', deps),
                         path=path.group(1).rstrip('/') if path else ('Tests/' if kind == 'testTarget' else 'Sources/') + name)
for t, d in targets.items():
    where = f'{PACKAGE}:{d["line"]}'
    if t not in rows: violation(where, f'target {t} has no row in {DOC}'); continue
    if d['path'] not in (f'Sources/{t}', f'Tests/{t}'):
        violation(where, f'target {t} lives at {d["path"]}; the import check expects Sources/{t} or Tests/{t}')
    want = KINDS.get(d['kind'])
    if want and rows[t]['kind'] != want and not (want == 'library' and rows[t]['kind'] in ('C', 'test support')):
        violation(where, f'target {t} is a .{d["kind"]} but its row in {DOC} says {rows[t]["kind"]}')
    for x in d['deps']:
        if not allows(t, x): violation(where, f'target {t} depends on {x}: ' + refusal(t, x))
for m, r in rows.items():
    if not r['planned'] and m not in targets:
        violation(f'{DOC}:{r["line"]}', f'{m} is no target in {PACKAGE} (remove the row, or mark it (planned))')

# --- 3 and 4. Directories and their imports --------------------------------------------
IMPORT = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private|open)\s+)?'
                    r'import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?([A-Za-z_]\w*)')
files, modules = 0, 0
for top in ('Sources', 'Tests'):
    for m in sorted(os.listdir(top)):
        root = os.path.join(top, m)
        if not os.path.isdir(root): continue
        swift = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith('.swift'))
        if top == 'Tests' and not swift: continue      # scripts and C (e2e, Bench): no module
        modules += 1
        if m not in rows:
            violation(root, f'{m} has no row in {DOC} (place the new module in the table first)'); continue
        for path in swift:
            files += 1
            text = open(path, encoding='utf-8').read()
            text = re.sub(r'/\*.*?\*/', lambda b: '\n' * b.group(0).count('\n'), text, flags=re.S)
            for n, line in enumerate(text.split('\n'), 1):
                for stmt in line.split(';'):
                    hit = IMPORT.match(stmt)
                    if hit and hit.group(1) != m and not allows(m, hit.group(1)):
                        violation(f'{path}:{n}', refusal(m, hit.group(1)))

for v in violations: print(v)
print(f'check imports: {files} files, {modules} modules, {len(violations)} violation{"" if len(violations) == 1 else "s"}')
sys.exit(1 if violations else 0)
PY
