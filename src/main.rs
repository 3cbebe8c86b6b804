fn main() -> std::process::ExitCode {
    hcbill::cli::main()
}
