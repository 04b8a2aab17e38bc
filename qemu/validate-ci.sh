#!/usr/bin/env bash
# Validate what CI engines consume from epoll-torture:
#
#   qemu/validate-ci.sh [REPORT_DIR...]
#
# - kcidb.json against the KCIDB I/O schema with the `kcidb-io` package's
#   own validator (kcidb_io.schema.LATEST.validate, JSON formats checked);
# - junit.xml against qemu/junit.xsd (the JUnit structure GitLab and
#   Jenkins read, `xmlschema`), and read back with `junitparser` (one test
#   case per run of report.json, named arch.variant.scenario.rN, outcomes
#   and counts as the report says);
# - .github/workflows/epoll-torture.yml and .gitlab-ci.yml against
#   `check-jsonschema`'s built-in schemas (vendor.github-workflows,
#   vendor.gitlab-ci).
#
# Without REPORT_DIR it judges the real console logs in
# selftests/host/fixtures into a scratch report (every verdict kind the
# fixtures have) and validates that. Each check also runs once on a
# deliberately broken copy, which must fail (a validator that accepts
# anything is caught).
#
# The tools live in a Python venv under $EPT_CACHE/ci-venv, created here
# (python3-venv is installed with apt-get when `python3 -m venv` fails).
# Prints "[ci] ok|FAIL ..." lines and ends with "N passed, N failed".
set -uo pipefail
EPT_TAG=ci
. "$(dirname "$0")/lib.sh"
cd "$EPT_TOP"

VENV="$EPT_CACHE/ci-venv"
REQS="kcidb-io==141 check-jsonschema==0.39.0 xmlschema==4.3.2 junitparser==5.0.3 jsonschema[format-nongpl]"
pass=0 fail=0
result() { # name rc [detail]
	if [ "$2" = 0 ]; then pass=$((pass + 1)); printf '[ci] ok   %-52s %s\n' "$1" "${3:-}"
	else fail=$((fail + 1)); printf '[ci] FAIL %-52s %s\n' "$1" "${3:-}"; fi
}

# --- the venv ---
if [ "$(cat "$VENV/.reqs" 2>/dev/null)" != "$REQS" ]; then
	rm -rf "$VENV"
	if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
		say "python3 -m venv failed: apt-get install python3-venv"
		rm -rf "$VENV"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
		python3 -m venv "$VENV" || die "cannot create a venv in $VENV"
	fi
	say "pip install $REQS (into $VENV)"
	# shellcheck disable=SC2086
	"$VENV/bin/pip" install -q --disable-pip-version-check $REQS || die "pip install failed"
	echo "$REQS" >"$VENV/.reqs"
fi
PY="$VENV/bin/python"

# --- the reports to check ---
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dirs=("$@")
if [ ${#dirs[@]} = 0 ]; then
	EPT="$EPT_TOP/selftests/host/target/release/ept"
	if [ ! -x "$EPT" ]; then
		say "building the host tool"
		cargo build -q --release --manifest-path selftests/host/Cargo.toml || die "cargo build failed"
	fi
	# Exit 1 or 3 (mismatches, ERROR runs) is expected: the fixtures hold
	# every verdict kind. The outputs must be written all the same.
	"$EPT" judge -q --out "$scratch/fixtures/report" selftests/host/fixtures/*.log >"$scratch/judge.out" 2>&1
	rc=$?
	if [ $rc -gt 3 ] || [ ! -f "$scratch/fixtures/report/junit.xml" ]; then
		result "ept judge --out (fixtures)" 1 "(exit $rc)"; tail -n 5 "$scratch/judge.out"
	else
		result "ept judge --out (fixtures)" 0 "($(grep -c . "$scratch/judge.out") logs, exit $rc)"
	fi
	dirs=("$scratch/fixtures/report")
fi

# --- kcidb.json: kcidb-io's validator ---
kcidb_check() { # file
	"$PY" - "$1" <<'PY'
import json, sys
import kcidb_io
data = json.load(open(sys.argv[1]))
schema = kcidb_io.schema.LATEST
schema.validate(data)  # raises jsonschema.ValidationError
assert schema.is_compatible_exactly(data), "not exactly the latest schema version"
v = data["version"]
ids = {k: {o["id"] for o in data.get(k, [])} for k in ("checkouts", "builds", "tests")}
for b in data.get("builds", []):
    assert b["checkout_id"] in ids["checkouts"], "dangling checkout_id " + b["checkout_id"]
for t in data.get("tests", []):
    assert t["build_id"] in ids["builds"], "dangling build_id " + t["build_id"]
    assert len(t.get("log_excerpt", "")) <= 16384
assert len(ids["tests"]) == len(data["tests"]), "test ids are not unique"
print("valid (kcidb_io.schema.LATEST = %s): v%d.%d, %d checkouts, %d builds, %d tests" % (
    schema, v["major"], v["minor"], len(ids["checkouts"]), len(ids["builds"]), len(ids["tests"])))
PY
}

kcidb_broken() { # file: a copy with a bad status and a bad id must fail
	"$PY" - "$1" <<'PY'
import json, sys
import jsonschema, kcidb_io
data = json.load(open(sys.argv[1]))
bad = json.loads(json.dumps(data))
bad["tests"][0]["status"] = "MISMATCH"
bad2 = json.loads(json.dumps(data))
bad2["builds"][0]["id"] = "no-origin-prefix"
for d in (bad, bad2):
    try:
        kcidb_io.schema.LATEST.validate(d)
    except jsonschema.ValidationError as e:
        print("rejected as expected:", e.message[:80])
        continue
    sys.exit("a broken kcidb.json was accepted")
PY
}

# --- junit.xml: XSD + junitparser against report.json ---
junit_check() { # junit.xml report.json
	"$PY" - "$1" "$2" "$EPT_TOP/qemu/junit.xsd" <<'PY'
import json, sys
import xmlschema
from junitparser import JUnitXml, Failure, Error, Skipped
xml_path, rep_path, xsd = sys.argv[1:4]
xmlschema.XMLSchema(xsd).validate(xml_path)
rep = json.load(open(rep_path))
xml = JUnitXml.fromfile(xml_path)
cases = {}
for suite in xml:
    n = f = e = s = 0
    for case in suite:
        n += 1
        kinds = [type(r) for r in case.result]
        f += Failure in kinds; e += Error in kinds; s += Skipped in kinds
        assert case.classname == suite.name, (case.classname, suite.name)
        cases[case.name] = (kinds, case)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (n, f, e, s), suite.name
want = {}
kinds_of_runs = []
for r in rep["runs"]:
    name = "%s.%s.%s.r%d" % (r["arch"], r["variant"], r["scenario"], r["repeat"])
    if r["verdict"] in ("UNAVAILABLE", "NOT_APPLICABLE"):
        k = [Skipped]
    elif r["verdict"] == "ERROR":
        k = [Error]
    elif not r["meets"]:
        k = [Failure]
    else:
        k = []
    # The k-th repetition of a name (several logs of one cell) is "name (k)".
    seen = sum(1 for x in want if x == name or x.startswith(name + " ("))
    want[name if seen == 0 else "%s (%d)" % (name, seen + 1)] = k
    kinds_of_runs.append(k)
got = {n: c[0] for n, c in cases.items()}
assert len(cases) == sum(suite.tests for suite in xml), "test case names are not unique"
assert got == want, "junit test cases differ from report.json runs"
for n, (kinds, case) in cases.items():
    for res in case.result:
        if isinstance(res, (Failure, Error)):
            assert res.message and res.message.split(" ")[0] == res.type, (n, res.message)
print("junit.xml valid against junit.xsd; %d test cases = %d runs (%d failures, %d errors, %d skipped)" % (
    len(cases), len(rep["runs"]),
    sum(Failure in k for k in kinds_of_runs), sum(Error in k for k in kinds_of_runs),
    sum(Skipped in k for k in kinds_of_runs)))
PY
}

junit_broken() { # junit.xml: a test case without classname, and a failure
	# outside a test case, must be rejected by the XSD
	"$PY" - "$1" "$EPT_TOP/qemu/junit.xsd" <<'PY'
import re, sys
import xmlschema
text = open(sys.argv[1]).read()
schema = xmlschema.XMLSchema(sys.argv[2])
for bad in (re.sub(r' classname="[^"]*"', "", text, count=1),
            text.replace("<testsuite ", "<testsuite><failure/></testsuite><testsuite ", 1)):
    if schema.is_valid(bad):
        sys.exit("a broken junit.xml was accepted")
print("rejected as expected")
PY
}

for d in "${dirs[@]}"; do
	for f in kcidb.json junit.xml report.json; do
		[ -f "$d/$f" ] || { result "$d/$f" 1 "(missing)"; continue 2; }
	done
	out=$(kcidb_check "$d/kcidb.json" 2>&1); result "kcidb.json: kcidb-io schema" $? "$(echo "$out" | tail -n1)"
	out=$(junit_check "$d/junit.xml" "$d/report.json" 2>&1); result "junit.xml: junit.xsd + junitparser" $? "$(echo "$out" | tail -n1)"
	out=$(kcidb_broken "$d/kcidb.json" 2>&1); result "kcidb.json: broken copy rejected" $? "$(echo "$out" | tail -n1)"
	out=$(junit_broken "$d/junit.xml" 2>&1); result "junit.xml: broken copy rejected" $? "$(echo "$out" | tail -n1)"
done

# --- the pipeline files ---
CJ="$VENV/bin/check-jsonschema"
out=$("$CJ" --builtin-schema vendor.github-workflows .github/workflows/epoll-torture.yml 2>&1)
result "GitHub workflow: vendor.github-workflows" $? "$(echo "$out" | tail -n1)"
out=$("$CJ" --builtin-schema vendor.gitlab-ci .gitlab-ci.yml 2>&1)
result "GitLab CI: vendor.gitlab-ci" $? "$(echo "$out" | tail -n1)"
# Broken copies: a job without runs-on / a job whose `when` is invalid.
sed 's/^    runs-on: ubuntu-latest$/    runs-off: ubuntu-latest/' .github/workflows/epoll-torture.yml >"$scratch/gh.yml"
sed 's/^  when: always$/  when: sometimes/' .gitlab-ci.yml >"$scratch/gl.yml"
if ! cmp -s "$scratch/gh.yml" .github/workflows/epoll-torture.yml && ! "$CJ" --builtin-schema vendor.github-workflows "$scratch/gh.yml" >/dev/null 2>&1; then
	result "GitHub workflow: broken copy rejected" 0
else result "GitHub workflow: broken copy rejected" 1; fi
if ! cmp -s "$scratch/gl.yml" .gitlab-ci.yml && ! "$CJ" --builtin-schema vendor.gitlab-ci "$scratch/gl.yml" >/dev/null 2>&1; then
	result "GitLab CI: broken copy rejected" 0
else result "GitLab CI: broken copy rejected" 1; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
