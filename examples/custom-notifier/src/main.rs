//! The reseller's esim-courier: the whole CLI (`serve`, `check`, `preview`, `resend`, ...)
//! with one more notifier type, `crm`, registered beside the built-in ones.

mod crm;

fn main() -> std::process::ExitCode {
    esim_courier::Courier::builder()
        .notifier("crm", crm::CrmNotifier::new)
        .run()
}
