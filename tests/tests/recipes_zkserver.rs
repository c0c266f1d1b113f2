//! zk-recipes against the in-process zk-server: the same scenarios as against Apache.

mod recipes_scenarios;

use recipes_scenarios::{coordination, user};
use zk_server::config::ServerConfig;
use zk_server::storage::store::MemoryStore;
use zk_server::{Server, ServerHandle};

async fn start(dir: &tempfile::TempDir) -> ServerHandle {
    let mut cfg = ServerConfig::for_tests(dir.path());
    cfg.extended_types = true;
    // The discovery scenario opens over 100 sessions from loopback (as the Apache kit does).
    cfg.max_client_cnxns = 0;
    Server::start_in_memory(cfg, MemoryStore::new())
        .await
        .expect("zk-server starts")
}

macro_rules! scenario {
    ($name:ident, $f:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let s = start(&dir).await;
            $f(&s.connect_string()).await;
            s.stop().await.unwrap();
        }
    };
}

scenario!(naming_against_zk_server, user::naming);
scenario!(config_watch_against_zk_server, user::config_watch);
scenario!(membership_against_zk_server, user::membership);
scenario!(discovery_against_zk_server, user::discovery);
scenario!(balancing_against_zk_server, user::balancing);
scenario!(lock_against_zk_server, coordination::lock);
scenario!(election_against_zk_server, coordination::election);
scenario!(rwlock_against_zk_server, coordination::rwlock);
scenario!(semaphore_against_zk_server, coordination::semaphore);
scenario!(barriers_against_zk_server, coordination::barriers);
scenario!(counter_against_zk_server, recipes_scenarios::data::counter);
scenario!(queue_against_zk_server, recipes_scenarios::data::queue);
scenario!(
    tree_cache_against_zk_server,
    recipes_scenarios::data::tree_cache
);
scenario!(discovery_stream_against_zk_server, user::discovery_stream);
scenario!(rotation_against_zk_server, user::rotation);
scenario!(fencing_against_zk_server, coordination::fencing);
