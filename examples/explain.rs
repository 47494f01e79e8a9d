//! Prints SQLite's plan for a query and times it twice, on a calltrail database:
//! `cargo run --release --example explain -- DATA/calltrail.sqlite "SELECT …" [integer params…]`
//! (set READER=1 to apply the server's read-connection settings).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let conn = rusqlite::Connection::open(&args[1]).unwrap();
    if std::env::var("READER").is_ok() {
        calltrail::store::dialect::configure_reader(&conn).unwrap();
    }
    let sql = &args[2];
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let params: Vec<i64> = args[3..].iter().map(|a| a.parse().unwrap()).collect();
    let p = rusqlite::params_from_iter(params.iter());
    let rows = stmt.query_map(p, |r| r.get::<_, String>(3)).unwrap();
    for r in rows {
        println!("  {}", r.unwrap());
    }
    let t = std::time::Instant::now();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |_| Ok(()))
        .unwrap()
        .count();
    println!("{n} rows in {:.2} ms", t.elapsed().as_secs_f64() * 1000.0);
    let t = std::time::Instant::now();
    let n = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |_| Ok(()))
        .unwrap()
        .count();
    println!("{n} rows in {:.2} ms (again)", t.elapsed().as_secs_f64() * 1000.0);
}
