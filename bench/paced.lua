-- wrk script: another script's requests ($BENCH_SCRIPT: bench/multi.lua or bench/get.lua), each
-- connection pausing $BENCH_DELAY_MS ms between its requests: a paced load that leaves the service
-- room, where the other scripts alone keep every connection busy (a saturating load).
--   BENCH_SCRIPT=bench/get.lua BENCH_DELAY_MS=20 BENCH_REQUESTS=... wrk -t1 -c4 -d10s -s bench/paced.lua URL

dofile(os.getenv("BENCH_SCRIPT"))

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

function delay()
  return pause
end
