//! placeholder
mod error;
mod parse;
pub use error::AnalysisError;

#[cfg(test)]
mod depth_probe {
    #[test]
    fn probe() {
        for n in [10usize, 40, 60, 100, 200, 1000, 10000, 100000] {
            let q = format!("SELECT {}", vec!["a"; n].join(" || "));
            let r = crate::parse::parse(&q);
            println!("concat {n}: {:?}", r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let q = format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n));
            let r = crate::parse::parse(&q);
            println!("parens {n}: {:?}", r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let q = format!("SELECT {}1{}", "-".repeat(n), "");
            let r = crate::parse::parse(&q);
            println!("neg {n}: {:?}", r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            let q = format!("SELECT * FROM {}(SELECT 1){}", "(SELECT * FROM ".repeat(n), " x)".repeat(n));
            let r = crate::parse::parse(&q);
            println!("subq {n}: {:?}", r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
    }
}
