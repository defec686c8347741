#[tokio::main]
async fn main() {
    match market_ledger::cli::run().await {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("market-ledger: {error:#}");
            std::process::exit(2);
        }
    }
}
