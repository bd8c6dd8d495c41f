//! `esim-courier`: the eSIM reseller's fulfilment backend, with the built-in notifier types.
//! A reseller's own binary registers more (`esim_courier::Courier::builder().notifier(..)`).

fn main() -> std::process::ExitCode {
    esim_courier::Courier::builder().run()
}
