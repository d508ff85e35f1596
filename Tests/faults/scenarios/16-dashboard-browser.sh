#!/usr/bin/env bash
# Scenario 10 — the dashboard in a real browser (headless Chromium from Debian's packages).
#
# A coordinator on loopback gets three jobs over the API: one running on 8 ranks with rank 3 20 %+
# slow for 6 reports (a straggler), a loss spike of 57.7 and two records; one its supervisor reports
# `restarting`; one that stops reporting and stalls (interval 1 s, stalled after 3 s). Chromium
# loads `/` with the coordinator's own Content-Security-Policy, dumps the DOM it built and takes a
# screenshot (kept as .build/faults/16-dashboard.png).
# Proves: the page parses in a browser into the job table (3 rows) with the state badges running,
# restarting and stalled, the straggler named in the table and drawn red, the charts as SVG
# elements (log-scale loss, images/s, step time per rank, records), the supervisor's line, and the
# self-refresh; nothing on the page needs an external asset.
# timeout: 150
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
fault_init

# Chromium comes from the distribution's packages, installed here like deploy/install-deps.sh does.
if ! command -v chromium >/dev/null; then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    note "installing chromium with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null || fail "chromium is not installed and apt-get could not install it"

start_coordinator main "$WORK/data"

# report JOB STEP LOSS SLOW_SECONDS INTERVAL: one progress report of 8 ranks, rank 3 at SLOW_SECONDS.
report() {
    local times="0.5,0.5,0.5,$4,0.5,0.5,0.5,0.5"
    local hosts='"node0","node0","node0","node0","node1","node1","node1","node1"'
    curl -sS --fail-with-body --max-time 10 -H 'Content-Type: application/json' -X POST \
        "$COORD_URL/v1/jobs/$1/progress" -d "{\"state\":\"running\",\"epoch\":2,\"epochs\":120,\"step\":$2,
        \"steps_per_epoch\":10009,\"train_loss\":$3,\"lr\":0.1,\"images_per_second\":412,\"data_seconds\":0.05,
        \"compute_seconds\":0.4,\"communication_seconds\":0.05,\"eta_seconds\":792000,\"interval_seconds\":$5,
        \"rank_step_seconds\":[$times],\"rank_hosts\":[$hosts],\"timestamp\":1700000000}" >/dev/null
}
record() {
    curl -sS --fail-with-body --max-time 10 -H 'Content-Type: application/json' -X POST \
        "$COORD_URL/v1/jobs/browser-run/records" -d "{\"worker_id\":\"0\",\"rank\":0,\"epoch\":$1,\"step\":$2,
        \"performance\":{\"accuracy_top1\":$3,\"accuracy_top5\":$4,\"loss\":$5},\"timestamp\":1700000000}" >/dev/null
}

step=100
for loss in 57.7 4.1 3.2 2.9 2.7 2.6; do
    report browser-run "$step" "$loss" 0.8 600
    step=$((step + 100))
done
record 0 10009 0.31 0.62 2.9
record 1 20018 0.45 0.77 2.4
report browser-restart 100 3.0 0.5 600
curl -sS --fail-with-body --max-time 10 -H 'Content-Type: application/json' -X POST \
    "$COORD_URL/v1/jobs/browser-restart/state" \
    -d '{"state":"restarting","message":"rank 3 exited 69, restart 2/5","step":1200}' >/dev/null
report browser-hung 100 3.0 0.5 1
stalled() { curl -sS --max-time 5 "$COORD_URL/v1/jobs/browser-hung" | jq -e '.state == "stalled"' >/dev/null; }
expect wait_for 10 stalled -- "browser-hung did not become stalled 3 s after its last report"

# --no-sandbox: root in CI has no user namespace for Chromium's sandbox; the page is our own, on loopback.
CHROMIUM=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
    --user-data-dir="$WORK/chromium-profile" --virtual-time-budget=2000)
SCREENSHOT=$ROOT/.build/faults/16-dashboard.png
rm -f "$SCREENSHOT"
started=$(now)
"${CHROMIUM[@]}" --dump-dom "$COORD_URL/" >"$WORK/dom.html" 2>"$WORK/chromium-dom.err" ||
    { tail -n 20 "$WORK/chromium-dom.err"; fail "chromium --dump-dom failed"; }
"${CHROMIUM[@]}" --window-size=1280,2600 --screenshot="$SCREENSHOT" "$COORD_URL/" >"$WORK/chromium-shot.out" 2>&1 ||
    { tail -n 20 "$WORK/chromium-shot.out"; fail "chromium --screenshot failed"; }
browser_seconds=$(seconds_since "$started")
cp "$WORK/dom.html" "$ROOT/.build/faults/16-dashboard.dom.html"

DOM=$WORK/dom.html
count() { grep -o -- "$1" "$DOM" | wc -l; }
expect test "$(count '<tr><td><a href="#job-')" -eq 3 -- "the job table does not have 3 rows: $(head -c 2000 "$DOM")"
for state in running restarting stalled; do
    expect grep -q "class=\"badge\"[^>]*>$state</span>" "$DOM" -- "no $state badge in the DOM"
done
expect grep -q '<td>rank 3 (node0)</td>' "$DOM" -- "the straggler rank 3 (node0) is not in the job table"
expect grep -q 'fill="#d62728"><title>rank 3 node0' "$DOM" -- "rank 3's bar is not red"
expect grep -q 'browser-restart restarting: rank 3 exited 69, restart 2/5 (step 1200)' "$DOM" -- \
    "the supervisor's line is not on the page"
expect grep -q '<meta http-equiv="refresh"' "$DOM" -- "the page does not refresh itself"
# In the browser's DOM the charts are SVG elements: per job log-scale loss, images/s and ranks, plus
# the records chart of browser-run: 3 + 3 + 3 + 1.
charts=$(count '<svg class="chart"')
expect test "$charts" -eq 10 -- "expected 10 SVG charts in the DOM, found $charts"
expect test "$(count 'aria-label="train loss (log scale)"')" -eq 3 -- "not every job has its log-scale loss chart"
expect test "$(count '<polyline')" -ge 5 -- "the charts have no lines"
if grep -q -E 'src="https?:|href="https?:' "$DOM"; then fail "the page refers to an external asset"; fi
grep -q 'Refused to' "$WORK/chromium-dom.err" && fail "Chromium refused content under the page's CSP: $(grep 'Refused to' "$WORK/chromium-dom.err" | head -n 3)"

# The screenshot is a PNG of the requested size (width and height are bytes 16..23 of the IHDR chunk).
expect test -s "$SCREENSHOT" -- "chromium wrote no screenshot"
expect test "$(head -c 8 "$SCREENSHOT" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a -- "the screenshot is not a PNG"
size=$(od -An -tu1 -j16 -N8 "$SCREENSHOT" | awk '{ printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8 }')
expect test "$size" = 1280x2600 -- "the screenshot is $size, not 1280x2600"

result "3 jobs, badges running/restarting/stalled, straggler red, $charts charts; chromium ${browser_seconds}s; screenshot $size"
