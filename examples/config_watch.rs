//! Config watch: a typed JSON config at `/config/app` read once and then followed as a
//! stream of new versions while a writer changes it; the watcher's connection is not
//! special: it survives reconnects and session expiry (see zk_recipes::config).
//!
//! `cargo run -p examples --example config_watch [-- --hosts h:p,...]`

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use zk_recipes::config::{Config, ConfigEvent, Json};
use zk_recipes::Session;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = examples::target().await?;
    let session = Session::connect(&target.hosts).await?;
    let config: Config<Json<serde_json::Value>> = Config::new(&session, "/config/app");
    config
        .set(&Json(json!({"replicas": 1, "feature_x": false})), None)
        .await?;

    let mut updates = config.watch();
    let watcher = tokio::spawn(async move {
        while let Some(ev) = updates.next().await {
            match ev {
                ConfigEvent::Changed(v) => {
                    println!("config v{} (zxid {:#x}): {}", v.version, v.mzxid, v.value.0);
                    if v.value.0["replicas"] == 5 {
                        return;
                    }
                }
                ConfigEvent::Absent => println!("config absent"),
                ConfigEvent::Invalid { reason, .. } => println!("bad config ignored: {reason}"),
                ConfigEvent::Session(s) => println!("session: {s:?}"),
            }
        }
    });

    // A second process would do this; here a second session in the same process.
    let writer_session = Session::connect(&target.hosts).await?;
    let writer: Config<Json<serde_json::Value>> = Config::new(&writer_session, "/config/app");
    for replicas in 2..=5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let current = writer.get().await?.ok_or("config vanished")?;
        let mut value = current.value.0.clone();
        value["replicas"] = json!(replicas);
        value["feature_x"] = json!(replicas % 2 == 0);
        // Conditional write: fails if someone else changed it since we read it.
        writer.set(&Json(value), Some(current.version)).await?;
    }
    tokio::time::timeout(Duration::from_secs(10), watcher).await??;
    writer_session.close().await?;
    session.close().await?;
    target.shutdown().await;
    Ok(())
}
