//! The gRPC services, one file per service: each request is converted
//! (convert.rs), handed to the runtime, and its result turned into a
//! response or a status (status.rs).

mod attach;
mod chunks;
mod containers;
mod convert;
mod events;
mod exec;
mod images;
mod list;
mod networks;
mod status;
mod system;

pub use containers::ContainersService;
pub use events::EventsService;
pub use images::ImagesService;
pub use networks::NetworksService;
pub use system::SystemService;
