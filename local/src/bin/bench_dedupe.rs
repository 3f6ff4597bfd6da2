//! `make bench`, dedupe part: what a `dedupeKey` costs in DynamoDB capacity
//! (DynamoDB Local reports consumed capacity as DynamoDB bills it) — a plain
//! start, a keyed start on a free key (the execution and its guard in one
//! transaction), the same keyed request again (answered from reads), and a
//! supersede (the new execution, its guard and the old one's cancel in one
//! transaction). Writes `bench/results/dedupe.json` and `.md`.

use courier_functions::platform::clock;
use serde_json::json;

const RUNS: usize = 50;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let (client, table) = courier_local::aws::fresh_table().await;
    let courier = courier_local::aws::courier(client, &table);
    let store = courier.store();
    let now = clock::now();
    courier
        .create_command(
            &json!({"commandId": "lock", "parameters": [
                {"name": "pin", "type": "S", "default": {"S": "0000"}}]})
            .into(),
            now,
        )
        .await?;
    let measure = |name: &'static str| {
        let units = (store.meter().write_units(), store.meter().read_units());
        store.meter().reset();
        (name, units.0 / RUNS as f64, units.1 / RUNS as f64)
    };
    let mut rows = Vec::new();
    measure("reset");
    for i in 0..RUNS {
        let body = json!({"target": format!("plain-{i}")});
        courier
            .start_execution("lock", &body.into(), "bench", now)
            .await?;
    }
    rows.push(measure("plain start (no dedupeKey)"));
    for i in 0..RUNS {
        let body = json!({"target": format!("keyed-{i}"), "dedupeKey": "lock"});
        courier
            .start_execution("lock", &body.into(), "bench", now)
            .await?;
    }
    rows.push(measure(
        "keyed start, key free (transaction: execution + guard)",
    ));
    for i in 0..RUNS {
        let body = json!({"target": format!("keyed-{i}"), "dedupeKey": "lock"});
        let (_, created) = courier
            .start_execution("lock", &body.into(), "bench", now)
            .await?;
        if created {
            return Err("a repeated keyed request created a second execution".into());
        }
    }
    rows.push(measure(
        "the same keyed request again (returns the pending one)",
    ));
    for i in 0..RUNS {
        let body = json!({"target": format!("keyed-{i}"), "dedupeKey": "lock",
                          "supersede": true, "parameters": {"pin": {"S": "1234"}}});
        courier
            .start_execution("lock", &body.into(), "bench", now)
            .await?;
    }
    rows.push(measure(
        "supersede (transaction: execution + guard + the old one's cancel)",
    ));

    let result: Vec<_> = rows
        .iter()
        .map(|(name, w, r)| json!({"case": name, "writeUnits": w, "readUnits": r}))
        .collect();
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/dedupe.json"),
        serde_json::to_string_pretty(&json!({"runs": RUNS, "cases": result}))? + "\n",
    )?;
    let mut md = format!(
        "| start request, mean of {RUNS} (DynamoDB Local) | write units | read units |\n|---|---|---|\n"
    );
    for (name, w, r) in &rows {
        md.push_str(&format!("| {name} | {w:.2} | {r:.2} |\n"));
    }
    std::fs::write(format!("{out_dir}/dedupe.md"), &md)?;
    print!("{md}");
    Ok(())
}
