#[test]
fn probe_unions() {
    for stack_kb in [256usize, 512, 1024, 2048, 4096, 8192] {
        for n in [1000usize, 4000, 9000] {
            let q = vec!["SELECT 1"; n].join(" UNION ALL ");
            let q2 = format!("SELECT {}", vec!["a"; n].join(" + "));
            let r = std::thread::Builder::new().stack_size(stack_kb << 10).spawn(move || {
                let a = portcullis_sql::analyze_uncached(&q).map(|_| ()).map_err(|e| e.to_string());
                let b = portcullis_sql::analyze_uncached(&q2).map(|_| ()).map_err(|e| e.to_string());
                (a, b)
            }).unwrap().join();
            println!("stack {stack_kb}K n {n}: {r:?}");
        }
    }
}
