//! `wire_struct!`: declares a message struct's fields once, with their version ranges, and
//! generates the struct, its `Default` (Kafka's schema defaults) and its [`Codec`] impl.
//!
//! ```text
//! wire_struct! {
//!     /// Doc for the struct.
//!     pub struct PartitionData {
//!         /// Doc for the field.
//!         partition_index: i32 => ..,          // every supported version
//!         log_start_offset: i64 = -1 => 5..,   // versions 5+, default -1 when absent
//!         retention_time_ms: i64 = -1 => ..=4, // versions up to 4
//!     }
//! }
//! ```
//!
//! The version range is any `RangeBounds<i16>` expression. Fields are read and written in
//! declaration order, which must be the schema's order; a field outside its range is skipped on
//! the wire and takes its default after decoding.
//!
//! [`Codec`]: super::primitives::Codec

macro_rules! wire_struct {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty $(= $default:expr)? => $versions:expr,
            )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $( $field: wire_struct!(@default $($default)?), )*
                }
            }
        }

        impl $crate::wire::primitives::Codec for $name {
            #[allow(unused_mut, unused_variables)]
            fn min_bytes(version: i16) -> usize {
                let mut n = 0usize;
                $(
                    if ::core::ops::RangeBounds::<i16>::contains(&($versions), &version) {
                        n += <$ty as $crate::wire::primitives::Codec>::min_bytes(version);
                    }
                )*
                n
            }

            #[allow(unused_mut, unused_variables)]
            fn decode(
                r: &mut $crate::wire::primitives::Reader,
                version: i16,
            ) -> ::core::result::Result<Self, $crate::wire::error::WireError> {
                let mut value = <$name as ::core::default::Default>::default();
                $(
                    if ::core::ops::RangeBounds::<i16>::contains(&($versions), &version) {
                        value.$field =
                            <$ty as $crate::wire::primitives::Codec>::decode(r, version)
                                .map_err(|e| e.at(concat!(stringify!($name), ".", stringify!($field))))?;
                    }
                )*
                Ok(value)
            }

            #[allow(unused_variables)]
            fn encode<W: $crate::wire::primitives::WireWrite>(
                &self,
                w: &mut W,
                version: i16,
            ) -> ::core::result::Result<(), $crate::wire::error::WireError> {
                $(
                    if ::core::ops::RangeBounds::<i16>::contains(&($versions), &version) {
                        $crate::wire::primitives::Codec::encode(&self.$field, w, version)
                            .map_err(|e| e.at(concat!(stringify!($name), ".", stringify!($field))))?;
                    }
                )*
                Ok(())
            }
        }
    };
    (@default) => { ::core::default::Default::default() };
    (@default $default:expr) => { $default };
}
