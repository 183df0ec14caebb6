#[test]
fn scratch_timing() {
    use watchfloor_indicators::*;
    let ex = Extractor::new(Exclusions::default_reserved(), Default::default());
    let n = 50_000;
    let items: Vec<(String, String, String)> = (0..n).map(|i| {
        let ip = format!("203.0.{}.{}", 113 + i % 8, i % 250);
        let domain = format!("c2-{}.example.org", i % 1_000);
        (format!("[Org {}] [NETWORK] Outbound connection to {domain}", i % 50),
         format!("Host 10.1.2.{} connected to {ip} (hxxps://{domain}/gate.php?id={i}). Dropped file sha256 {:064x}. Blocked at the firewall.", i % 250, i as u128 * 0x9e37_79b9_7f4a_7c15),
         serde_json::json!({"id": format!("x-{i}"), "sourceIp": format!("10.1.2.{}", i % 250), "destIp": ip, "destDomainName": domain, "n": i}).to_string())
    }).collect();
    let t = std::time::Instant::now();
    let mut c = 0;
    for (a, b, r) in &items { c += ex.incident("bench", a, b, r).len(); }
    eprintln!("incident(): {:?} for {n} ({c} found)", t.elapsed());
    let t = std::time::Instant::now();
    for (a, b, _) in &items { c += extract(&format!("{a}\n{b}")).len(); }
    eprintln!("extract text only: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for (_, _, r) in &items { let v: serde_json::Value = serde_json::from_str(r).unwrap(); c += v.as_object().unwrap().len(); }
    eprintln!("parse only: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for (a, b, r) in &items { c += extract(&format!("{a}\n{b}\n{r}")).len(); }
    eprintln!("extract over raw text: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for (a, b, _) in &items { c += refang(&format!("{a}\n{b}")).len(); }
    eprintln!("refang only: {:?}", t.elapsed());
}
