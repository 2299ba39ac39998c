//! Placeholder crate docs; replaced below.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod cache;
mod client;
mod config;
mod error;
mod request;
mod response;
mod roots;
mod token;
mod transport;

pub use auth::{AuthStyle, ClientSecret};
pub use cache::{MAX_REFRESH_MARGIN, TokenCache, refresh_at, refresh_margin};
pub use client::{Client, Fetch};
pub use config::{Config, NFLEET_IDENTITY_URL};
pub use error::{Error, OAuthError};
pub use request::TokenRequest;
pub use response::HttpResponse;
pub use token::{AccessToken, Token};
pub use transport::MAX_BODY;
pub use ureq;
