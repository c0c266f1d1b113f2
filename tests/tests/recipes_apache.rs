//! zk-recipes against Apache ZooKeeper 3.8.

mod recipes_scenarios;

use recipes_scenarios::user;
use tests::apache::ApacheServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    user::naming(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_watch_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    user::config_watch(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    user::membership(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    user::discovery(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancing_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    user::balancing(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    recipes_scenarios::coordination::lock(&zk.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_against_apache() {
    let zk = ApacheServer::start().expect("apache");
    recipes_scenarios::coordination::election(&zk.connect_string()).await;
}

macro_rules! scenario {
    ($name:ident, $f:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let zk = ApacheServer::start().expect("apache");
            $f(&zk.connect_string()).await;
        }
    };
}

scenario!(
    rwlock_against_apache,
    recipes_scenarios::coordination::rwlock
);
scenario!(
    semaphore_against_apache,
    recipes_scenarios::coordination::semaphore
);
scenario!(
    barriers_against_apache,
    recipes_scenarios::coordination::barriers
);
scenario!(counter_against_apache, recipes_scenarios::data::counter);
scenario!(queue_against_apache, recipes_scenarios::data::queue);
scenario!(
    tree_cache_against_apache,
    recipes_scenarios::data::tree_cache
);
scenario!(
    discovery_stream_against_apache,
    recipes_scenarios::user::discovery_stream
);
scenario!(rotation_against_apache, recipes_scenarios::user::rotation);
scenario!(
    fencing_against_apache,
    recipes_scenarios::coordination::fencing
);
