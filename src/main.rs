use clap::Parser;

fn main() {
    let cli = recipes::cli::Cli::parse();
    let code = match recipes::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            recipes::exit::ERROR
        }
    };
    std::process::exit(code);
}
