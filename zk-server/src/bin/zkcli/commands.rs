//! zkCli's commands (Apache 3.8's `org.apache.zookeeper.cli.*`): the flags each takes,
//! its usage line, what it sends through zk-client and what it prints, with Apache's
//! messages and exit codes.

use std::time::Duration;

use zk_client::{Acl, AddWatchMode, CreateMode, Error, ErrorCode, Id, WatcherType};

use crate::output;
use crate::parsing::{validate_path, Flag, FlagSpec, Parsed};
use crate::quota;
use crate::session::Session;

/// A failed command: the message zkCli prints on stderr and the exit code it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The line printed on stderr.
    pub message: String,
    /// 1 for every failure but an unknown command (127).
    pub code: i32,
}

impl CliError {
    /// A failure with exit code 1 (`CliException`'s default).
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// `CliWrapperException` of a client error on `path`.
    pub fn wrap(e: &Error, path: &str) -> CliError {
        CliError::new(output::wrapper_message(error_code(e), Some(path)))
    }
}

/// The server code an error stands for, as the Java client would have reported it: a
/// request that found no connection fails with ConnectionLoss there.
pub fn error_code(e: &Error) -> ErrorCode {
    match e {
        Error::Timeout | Error::Closed | Error::Connect { .. } => ErrorCode::ConnectionLoss,
        e => e.code().unwrap_or(ErrorCode::SystemError),
    }
}

/// A command: its name and what zkCli's usage lists after it.
pub struct Command {
    /// Name.
    pub name: &'static str,
    /// Option string of the usage.
    pub options: &'static str,
}

const ADDWATCH_USAGE: &str = "[-m mode] path # optional mode is one of [PERSISTENT, \
                              PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE";
const RECONFIG_USAGE: &str = "[-s] [-v version] [[-file path] | [-members \
    serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* \
    [-remove serverId[,...]*]";

/// Every command zkCli knows, the shell's own included (its usage lists them sorted).
pub const COMMANDS: &[Command] = &[
    Command {
        name: "addWatch",
        options: ADDWATCH_USAGE,
    },
    Command {
        name: "addauth",
        options: "scheme auth",
    },
    Command {
        name: "close",
        options: "",
    },
    Command {
        name: "config",
        options: "[-c] [-w] [-s]",
    },
    Command {
        name: "connect",
        options: "host:port",
    },
    Command {
        name: "create",
        options: "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
    },
    Command {
        name: "delete",
        options: "[-v version] path",
    },
    Command {
        name: "deleteall",
        options: "path [-b batch size]",
    },
    Command {
        name: "delquota",
        options: "[-n|-b|-N|-B] path",
    },
    Command {
        name: "get",
        options: "[-s] [-w] path",
    },
    Command {
        name: "getAcl",
        options: "[-s] path",
    },
    Command {
        name: "getAllChildrenNumber",
        options: "path",
    },
    Command {
        name: "getEphemerals",
        options: "path",
    },
    Command {
        name: "history",
        options: "",
    },
    Command {
        name: "listquota",
        options: "path",
    },
    Command {
        name: "ls",
        options: "[-s] [-w] [-R] path",
    },
    Command {
        name: "printwatches",
        options: "on|off",
    },
    Command {
        name: "quit",
        options: "",
    },
    Command {
        name: "reconfig",
        options: RECONFIG_USAGE,
    },
    Command {
        name: "redo",
        options: "cmdno",
    },
    Command {
        name: "removewatches",
        options: "path [-c|-d|-a] [-l]",
    },
    Command {
        name: "set",
        options: "[-s] [-v version] path data",
    },
    Command {
        name: "setAcl",
        options: "[-s] [-v version] [-R] path acl",
    },
    Command {
        name: "setquota",
        options: "-n|-b|-N|-B val path",
    },
    Command {
        name: "stat",
        options: "[-w] path",
    },
    Command {
        name: "sync",
        options: "path",
    },
    Command {
        name: "version",
        options: "",
    },
    Command {
        name: "whoami",
        options: "",
    },
];

/// Whether zkCli knows `name` (case matters, as in zkCli).
pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|c| c.name == name)
}

/// `cmd options`, the line a command's own misuse prints.
pub fn usage_of(name: &str) -> String {
    let opts = COMMANDS
        .iter()
        .find(|c| c.name == name)
        .map_or("", |c| c.options);
    format!("{name} {opts}")
}

/// `ZooKeeperMain.usage()`: printed on stderr for an unknown command.
pub fn usage() -> String {
    let mut s = String::from(
        "ZooKeeper -server host:port -client-configuration properties-file cmd args\n",
    );
    for c in COMMANDS {
        s.push_str(&format!("\t{} {}\n", c.name, c.options));
    }
    s
}

const fn flag(name: &'static str, has_arg: bool, desc: &'static str) -> Flag {
    Flag {
        name,
        has_arg,
        desc,
    }
}

const fn spec(flags: &'static [Flag]) -> FlagSpec {
    FlagSpec {
        flags,
        group: &[],
        group_required: false,
    }
}

const LS: FlagSpec = spec(&[
    flag("?", false, "help"),
    flag("s", false, "stat"),
    flag("w", false, "watch"),
    flag("R", false, "recurse"),
]);
const GET: FlagSpec = spec(&[flag("s", false, "stats"), flag("w", false, "watch")]);
const SET: FlagSpec = spec(&[flag("s", false, "stats"), flag("v", true, "version")]);
const CREATE: FlagSpec = spec(&[
    flag("e", false, "ephemeral"),
    flag("s", false, "sequential"),
    flag("c", false, "container"),
    flag("t", true, "ttl"),
]);
const DELETE: FlagSpec = spec(&[flag("v", true, "version")]);
const DELETEALL: FlagSpec = spec(&[flag("b", true, "batch size")]);
const GETACL: FlagSpec = spec(&[flag("s", false, "stats")]);
const SETACL: FlagSpec = spec(&[
    flag("s", false, "stats"),
    flag("v", true, "version"),
    flag("R", false, "recursive"),
]);
const STAT: FlagSpec = spec(&[flag("w", false, "watch")]);
const NONE: FlagSpec = spec(&[]);
const CONFIG: FlagSpec = spec(&[
    flag("s", false, "stats"),
    flag("w", false, "watch"),
    flag("c", false, "client connection string"),
]);
const RECONFIG: FlagSpec = spec(&[
    flag("s", false, "stats"),
    flag("v", true, "required current config version"),
    flag("file", true, "path of config file to parse for membership"),
    flag(
        "members",
        true,
        "comma-separated list of config strings for non-incremental reconfig",
    ),
    flag(
        "add",
        true,
        "comma-separated list of config strings for new servers",
    ),
    flag(
        "remove",
        true,
        "comma-separated list of server IDs to remove",
    ),
]);
const REMOVEWATCHES: FlagSpec = spec(&[
    flag("c", false, "child watcher type"),
    flag("d", false, "data watcher type"),
    flag("a", false, "any watcher type"),
    flag(
        "l",
        false,
        "remove locally when there is no server connection",
    ),
]);
const ADDWATCH: FlagSpec = spec(&[flag("m", true, "")]);

fn parse(spec: &FlagSpec, words: &[String]) -> Result<Parsed, CliError> {
    spec.parse(words).map_err(CliError::new)
}

/// Parses with `spec`, failing with the usage line when fewer than `min` words remain.
fn parse_min(spec: &FlagSpec, words: &[String], min: usize) -> Result<Parsed, CliError> {
    let p = parse(spec, words)?;
    if p.args.len() < min {
        return Err(CliError::new(usage_of(&words[0])));
    }
    Ok(p)
}

/// The `cmd path [watch]` form zkCli still accepts for ls, get and stat: a third word
/// means "watch", by rewriting it into `-w` (whatever it was) and parsing again.
fn legacy_watch(
    spec: &FlagSpec,
    words: &[String],
    p: Parsed,
    old: &str,
    new: &str,
) -> Result<Parsed, CliError> {
    if p.args.len() <= 2 {
        return Ok(p);
    }
    eprintln!("'{old}' has been deprecated. Please use '{new}' instead.");
    let mut w = words.to_vec();
    w[2] = "-w".into();
    parse(spec, &w)
}

fn path_ok(path: &str) -> Result<(), CliError> {
    validate_path(path).map_err(CliError::new)
}

/// Java's `Integer.parseInt` of a flag value; zkCli dies with this exception, we report it.
fn int_value(v: &str) -> Result<i32, CliError> {
    v.parse::<i32>().map_err(|_| {
        CliError::new(format!(
            "java.lang.NumberFormatException: For input string: \"{v}\""
        ))
    })
}

fn version_flag(p: &Parsed) -> Result<Option<i32>, CliError> {
    match p.value("v") {
        Some(v) => int_value(v).map(|n| (n != -1).then_some(n)),
        None => Ok(None),
    }
}

fn text(data: Option<&[u8]>) -> String {
    match data {
        Some(d) => String::from_utf8_lossy(d).into_owned(),
        None => "null".into(),
    }
}

/// `AclParser.parse`: `scheme:id:perms` entries separated by commas; a malformed entry or
/// an unknown permission letter is reported on stderr and skipped.
pub fn parse_acl(s: &str) -> Vec<Acl> {
    let mut acl = Vec::new();
    for a in s.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        }
        let mut perms = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => perms |= 1,
                'w' => perms |= 2,
                'c' => perms |= 4,
                'd' => perms |= 8,
                'a' => perms |= 16,
                other => eprintln!("Unknown perm type: {other}"),
            }
        }
        acl.push(Acl {
            perms,
            id: Id::new(&a[..first], &a[first + 1..last]),
        });
    }
    acl
}

/// Runs one of the commands that talk to the server (`words[0]` is its name).
pub async fn run(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    match words[0].as_str() {
        "ls" => ls(s, words).await,
        "get" => get(s, words).await,
        "set" => set(s, words).await,
        "create" => create(s, words).await,
        "delete" => delete(s, words).await,
        "deleteall" => deleteall(s, words).await,
        "getAcl" => get_acl(s, words).await,
        "setAcl" => set_acl(s, words).await,
        "stat" => stat(s, words).await,
        "sync" => sync(s, words).await,
        "addauth" => addauth(s, words).await,
        "config" => config(s, words).await,
        "reconfig" => reconfig(s, words).await,
        "whoami" => whoami(s).await,
        "addWatch" => add_watch(s, words).await,
        "removewatches" => remove_watches(s, words).await,
        "getEphemerals" => get_ephemerals(s, words).await,
        "getAllChildrenNumber" => get_all_children_number(s, words).await,
        "setquota" => quota::setquota(s, words).await,
        "listquota" => quota::listquota(s, words).await,
        "delquota" => quota::delquota(s, words).await,
        "close" => {
            let _ = s.close().await;
            Ok(())
        }
        "version" => {
            let p = parse(&NONE, words)?;
            if p.args.len() > 1 {
                return Err(CliError::new(usage_of("version")));
            }
            println!(
                "ZooKeeper CLI version: zk-rs zkcli {}",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn ls(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse(&LS, words)?;
    if p.has("?") {
        print!("usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch\n");
    }
    let p = legacy_watch(&LS, words, p, "ls path [watch]", "ls [-w] path")?;
    let Some(path) = p.args.get(1) else {
        return Err(CliError::new(usage_of("ls")));
    };
    let watch = p.has("w");
    path_ok(path)?;
    let c = s.ready(path).await?;
    if p.has("R") {
        visit_subtree(&c, path, watch, &mut |p| {
            println!("{p}");
            async {}
        })
        .await
    } else {
        let (mut kids, stat) = c
            .get_children_with_stat(path, watch)
            .await
            .map_err(|e| CliError::wrap(&e, path))?;
        kids.sort();
        println!("{}", output::java_list(&kids));
        if p.has("s") {
            print!("{}", output::stat(&stat));
        }
        Ok(())
    }
}

/// `ZKUtil.visitSubTreeDFS`: the node (which must exist), then each node's sorted
/// children before descending into them; nodes vanishing meanwhile are skipped.
pub async fn visit_subtree<F, Fut>(
    c: &zk_client::Client,
    root: &str,
    watch: bool,
    visit: &mut F,
) -> Result<(), CliError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    c.get_data(root, watch)
        .await
        .map_err(|e| CliError::wrap(&e, root))?;
    visit(root.to_string()).await;
    let mut stack = vec![root.to_string()];
    // Depth first: a node's children are visited together, then each child's subtree in
    // order, so the pending subtrees go on the stack in reverse.
    while let Some(node) = stack.pop() {
        let mut kids = match c.get_children(&node, watch).await {
            Ok(k) => k,
            Err(Error::NoNode { .. }) => continue,
            Err(e) => return Err(CliError::wrap(&e, &node)),
        };
        kids.sort();
        let paths: Vec<String> = kids
            .iter()
            .map(|k| {
                if node == "/" {
                    format!("/{k}")
                } else {
                    format!("{node}/{k}")
                }
            })
            .collect();
        for p in &paths {
            visit(p.clone()).await;
        }
        stack.extend(paths.into_iter().rev());
    }
    Ok(())
}

async fn get(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&GET, words, 2)?;
    let p = legacy_watch(&GET, words, p, "get path [watch]", "get [-s] [-w] path")?;
    let path = &p.args[1];
    path_ok(path)?;
    let c = s.ready(path).await?;
    let (data, stat) = c
        .get_data_opt(path, p.has("w"))
        .await
        .map_err(|e| CliError::wrap(&e, path))?;
    println!("{}", text(data.as_deref()));
    if p.has("s") {
        print!("{}", output::stat(&stat));
    }
    Ok(())
}

async fn set(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&SET, words, 3)?;
    let path = &p.args[1];
    let version = version_flag(&p)?;
    path_ok(path)?;
    let c = s.ready(path).await?;
    let stat = c
        .set_data(path, p.args[2].as_bytes(), version)
        .await
        .map_err(|e| CliError::wrap(&e, path))?;
    if p.has("s") {
        print!("{}", output::stat(&stat));
    }
    Ok(())
}

/// Largest TTL Java accepts (`EphemeralType.TTL`'s 40 bits).
const MAX_TTL: i64 = 0xff_ffff_ffff;

async fn create(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&CREATE, words, 2)?;
    let (e, seq, container, has_ttl) = (p.has("e"), p.has("s"), p.has("c"), p.has("t"));
    if container && (e || seq) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl: i64 = match p.value("t") {
        Some(v) if has_ttl => v
            .parse()
            .map_err(|_| CliError::new("-t argument must be a long value"))?,
        _ => 0,
    };
    if has_ttl && e {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if has_ttl && container {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    let mode = match (e, seq, container, has_ttl) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    if has_ttl && (ttl <= 0 || ttl > MAX_TTL) {
        return Err(CliError::new(format!(
            "ttl must be positive and cannot be larger than: {MAX_TTL}"
        )));
    }
    let path = &p.args[1];
    let data = p.args.get(2).map(|d| d.as_bytes());
    let acl = match p.args.get(3) {
        Some(a) => parse_acl(a),
        None => Acl::open_unsafe(),
    };
    if seq {
        path_ok(&format!("{path}1"))?;
    } else {
        path_ok(path)?;
    }
    if acl.is_empty() {
        // Java's client refuses an empty ACL itself, with no path in the exception.
        eprintln!("{}", output::keeper_message(ErrorCode::InvalidAcl, None));
        return Err(CliError::new(output::wrapper_message(
            ErrorCode::InvalidAcl,
            None,
        )));
    }
    let c = s.ready(path).await?;
    let ttl = has_ttl.then(|| Duration::from_millis(ttl as u64));
    match c.create_opt(path, data, &acl, mode, ttl).await {
        Ok((created, _)) => {
            eprintln!("Created {created}");
            Ok(())
        }
        Err(err) => {
            let code = error_code(&err);
            if code == ErrorCode::EphemeralOnLocalSession {
                eprintln!("Unable to create ephemeral node on a local session");
            } else if code == ErrorCode::InvalidAcl {
                eprintln!("{}", output::keeper_message(code, Some(path)));
            }
            Err(CliError::wrap(&err, path))
        }
    }
}

async fn delete(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&DELETE, words, 2)?;
    if p.args.len() > 2 {
        eprintln!(
            "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' \
             instead."
        );
    }
    let path = &p.args[1];
    let version = version_flag(&p)?;
    path_ok(path)?;
    let c = s.ready(path).await?;
    c.delete(path, version)
        .await
        .map_err(|e| CliError::wrap(&e, path))
}

async fn deleteall(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&DELETEALL, words, 2)?;
    let batch = match p.value("b") {
        Some(v) => v
            .parse::<i32>()
            .map_err(|_| CliError::new("-b argument must be an int value"))?,
        None => 1000,
    };
    let path = &p.args[1];
    path_ok(path)?;
    let c = s.ready(path).await?;
    // ZKUtil.listSubTreeBFS, then deletes from the leaves up in multis of `batch`.
    let mut tree = vec![path.clone()];
    let mut i = 0;
    while i < tree.len() {
        let node = tree[i].clone();
        let kids = c
            .get_children(&node, false)
            .await
            .map_err(|e| CliError::wrap(&e, &node))?;
        for k in kids {
            tree.push(if node == "/" {
                format!("/{k}")
            } else {
                format!("{node}/{k}")
            });
        }
        i += 1;
    }
    let mut ok = true;
    let mut txn = c.multi();
    for (i, node) in tree.iter().enumerate().rev() {
        txn = txn.delete(node, None);
        if txn.len() as i32 == batch || i == 0 {
            if !ok {
                break;
            }
            let full = std::mem::replace(&mut txn, c.multi());
            if full.commit().await.is_err() {
                ok = false;
            }
        }
    }
    if !ok {
        eprintln!("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}

async fn get_acl(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&GETACL, words, 2)?;
    let path = &p.args[1];
    path_ok(path)?;
    let c = s.ready(path).await?;
    let (acl, stat) = c
        .get_acl(path)
        .await
        .map_err(|e| CliError::wrap(&e, path))?;
    print!("{}", output::acl_lines(&acl));
    if p.has("s") {
        print!("{}", output::stat(&stat));
    }
    Ok(())
}

async fn set_acl(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&SETACL, words, 3)?;
    let path = &p.args[1];
    let acl = parse_acl(&p.args[2]);
    let version = version_flag(&p)?;
    path_ok(path)?;
    let c = s.ready(path).await?;
    if acl.is_empty() {
        // Java's client refuses it before sending, with no path in the exception.
        return Err(CliError::new(output::wrapper_message(
            ErrorCode::InvalidAcl,
            None,
        )));
    }
    if p.has("R") {
        // Each node's failure is printed without a newline, as zkCli does.
        let client = c.clone();
        visit_subtree(&c, path, false, &mut |node| {
            let client = client.clone();
            let acl = acl.clone();
            async move {
                if let Err(e) = client.set_acl(&node, &acl, version).await {
                    print!("{}", output::keeper_message(error_code(&e), Some(&node)));
                }
            }
        })
        .await
    } else {
        let stat = c
            .set_acl(path, &acl, version)
            .await
            .map_err(|e| CliError::wrap(&e, path))?;
        if p.has("s") {
            print!("{}", output::stat(&stat));
        }
        Ok(())
    }
}

async fn stat(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&STAT, words, 2)?;
    let p = legacy_watch(&STAT, words, p, "stat path [watch]", "stat [-w] path")?;
    let path = &p.args[1];
    path_ok(path)?;
    let c = s.ready(path).await?;
    match c.exists(path, p.has("w")).await {
        Ok(Some(stat)) => {
            print!("{}", output::stat(&stat));
            Ok(())
        }
        Ok(None) => Err(CliError::new(output::wrapper_message(
            ErrorCode::NoNode,
            Some(path),
        ))),
        Err(e) => Err(CliError::wrap(&e, path)),
    }
}

async fn sync(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&NONE, words, 2)?;
    let path = &p.args[1];
    path_ok(path)?;
    let result = match s.ready(path).await {
        Ok(c) => tokio::time::timeout(Duration::from_secs(30), c.sync(path))
            .await
            .map_err(|_| CliError::new("java.util.concurrent.TimeoutException"))?
            .map_err(|e| error_code(&e)),
        Err(_) => Err(ErrorCode::ConnectionLoss),
    };
    match result {
        Ok(()) => println!("Sync is OK"),
        Err(code) => println!("Sync has failed. rc={}", code.to_i32()),
    }
    Ok(())
}

async fn addauth(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&NONE, words, 2)?;
    let auth = p.args.get(2).map(String::as_bytes).unwrap_or_default();
    // Java's addAuthInfo queues the packet and returns: a refusal shows as an AuthFailed
    // event (printed by the watcher), not as this command's error.
    if let Ok(c) = s.ready("").await {
        let _ = c.add_auth(&p.args[1], auth).await;
    }
    Ok(())
}

async fn config(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse(&CONFIG, words)?;
    let c = s.ready(zk_client::CONFIG_NODE).await?;
    let (data, stat) = c
        .get_config(p.has("w"))
        .await
        .map_err(|e| CliError::new(output::wrapper_message(error_code(&e), None)))?;
    let text = String::from_utf8_lossy(&data).into_owned();
    if p.has("c") {
        println!("{}", client_config_string(&text));
    } else {
        println!("{text}");
    }
    if p.has("s") {
        print!("{}", output::stat(&stat));
    }
    Ok(())
}

/// `ConfigUtils.getClientConfigStr`: `version` then the client addresses of the
/// `server.N` lines, comma separated (ordered by server id here).
fn client_config_string(cfg: &str) -> String {
    let mut version = "";
    let mut servers: Vec<(u64, String)> = Vec::new();
    for line in cfg.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "version" {
            version = v;
        }
        let Some(id) = k.strip_prefix("server.") else {
            continue;
        };
        let Some((_, client)) = v.split_once(';') else {
            continue;
        };
        let client = if client.contains(':') {
            client.to_string()
        } else {
            format!("0.0.0.0:{client}")
        };
        servers.push((id.parse().unwrap_or(u64::MAX), client));
    }
    servers.sort();
    let addrs: Vec<String> = servers.into_iter().map(|(_, a)| a).collect();
    format!("{version} {}", addrs.join(","))
}

async fn reconfig(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse(&RECONFIG, words)?;
    let (file, members) = (p.has("file"), p.has("members"));
    let (add, remove) = (p.has("add"), p.has("remove"));
    if !(file || members || add || remove) {
        return Err(CliError::new(usage_of("reconfig")));
    }
    let version =
        match p.value("v") {
            Some(v) => Some(i64::from_str_radix(v, 16).map_err(|_| {
                CliError::new("-v must be followed by a long (configuration version)")
            })?),
            None => None,
        };
    if (file || members) && (add || remove) {
        return Err(CliError::new(
            "Can't use -file or -members together with -add or -remove (mixing incremental and \
             non-incremental modes is not allowed)",
        ));
    }
    if file && members {
        return Err(CliError::new(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let lower = |n: &str| p.value(n).map(str::to_lowercase);
    let mut new_members = lower("members");
    if let Some(f) = p.value("file") {
        // The dynamic file's server lines, as the membership (Java re-renders them after
        // parsing; the server checks them either way).
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::new(format!("Error processing {f}{e}")))?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("server.") || l.starts_with("group.") || l.starts_with("weight.")
            })
            .collect();
        new_members = Some(lines.join("\n"));
    }
    let c = s.ready("").await?;
    let (data, stat) = c
        .reconfig(
            lower("add").as_deref(),
            lower("remove").as_deref(),
            new_members.as_deref(),
            version,
        )
        .await
        .map_err(|e| CliError::new(output::wrapper_message(error_code(&e), None)))?;
    println!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    );
    if p.has("s") {
        print!("{}", output::stat(&stat));
    }
    Ok(())
}

async fn whoami(s: &mut Session) -> Result<(), CliError> {
    let c = s.ready("").await?;
    let ids = c
        .who_am_i()
        .await
        .map_err(|e| CliError::new(output::wrapper_message(error_code(&e), None)))?;
    println!("Auth scheme: User");
    for i in ids {
        println!("{}: {}", i.auth_scheme, i.user);
    }
    Ok(())
}

async fn add_watch(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse(&ADDWATCH, words)?;
    if p.args.len() != 2 {
        return Err(CliError::new(usage_of("addWatch")));
    }
    let mode = match p.value("m").map(str::to_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
        Some("PERSISTENT") => AddWatchMode::Persistent,
        Some(_) => return Err(CliError::new(usage_of("addWatch"))),
    };
    let path = &p.args[1];
    path_ok(path)?;
    let c = s.ready(path).await?;
    c.add_watch_on_events(path, mode)
        .await
        .map_err(|e| CliError::wrap(&e, path))
}

async fn remove_watches(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse_min(&REMOVEWATCHES, words, 2)?;
    let path = &p.args[1];
    let wtype = if p.has("c") {
        WatcherType::Children
    } else if p.has("d") {
        WatcherType::Data
    } else {
        WatcherType::Any
    };
    path_ok(path)?;
    let c = s.ready(path).await?;
    c.remove_watches(path, wtype)
        .await
        .map_err(|e| CliError::wrap(&e, path))
}

async fn get_ephemerals(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse(&NONE, words)?;
    let prefix = p.args.get(1).map_or("/", String::as_str);
    if p.args.len() > 1 {
        path_ok(prefix)?;
    }
    let c = s.ready(prefix).await?;
    let eph = c
        .get_ephemerals(prefix)
        .await
        .map_err(|e| CliError::wrap(&e, prefix))?;
    println!("{}", output::java_list(&eph));
    Ok(())
}

async fn get_all_children_number(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = parse(&NONE, words)?;
    let Some(path) = p.args.get(1) else {
        return Err(CliError::new(usage_of("getAllChildrenNumber")));
    };
    path_ok(path)?;
    let c = s.ready(path).await?;
    let n = c
        .get_all_children_number(path)
        .await
        .map_err(|e| CliError::wrap(&e, path))?;
    println!("{n}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_parser_as_zkcli() {
        let a = parse_acl("world:anyone:cdrwa,digest:u:abc=:r");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].perms, 31);
        assert_eq!(a[1].id, Id::new("digest", "u:abc="));
        assert_eq!(a[1].perms, 1);
        assert!(parse_acl("bad").is_empty());
    }

    #[test]
    fn usage_lists_commands_sorted_as_java() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(usage().contains("\tclose \n"));
    }

    #[test]
    fn client_config_string_from_dynamic_config() {
        let cfg = "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                   server.1=127.0.0.1:2888:3888:participant;2181\nversion=100000000";
        assert_eq!(
            client_config_string(cfg),
            "100000000 0.0.0.0:2181,127.0.0.1:2182"
        );
        assert_eq!(client_config_string(""), " ");
    }
}
