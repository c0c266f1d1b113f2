//! A macro for protocol enums whose numbers come from the wire.

/// Declares an `i32`-backed protocol enum with an `Unknown(i32)` variant, so a number the
/// protocol does not define decodes to a typed value instead of a panic or an error.
macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A number this version of the protocol does not define.
            Unknown(i32),
        }

        impl $name {
            /// Every defined value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Maps a wire number to its value (never fails).
            pub const fn from_i32(v: i32) -> Self {
                match v {
                    $( $value => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }

            /// The wire number.
            pub const fn to_i32(self) -> i32 {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Unknown(v) => v,
                }
            }

            /// True for numbers the protocol defines.
            pub const fn is_known(self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::ALL[0]
            }
        }

        impl From<i32> for $name {
            fn from(v: i32) -> Self {
                $name::from_i32(v)
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v.to_i32()
            }
        }

        impl $crate::jute::Record for $name {
            const MIN_ENCODED_LEN: usize = 4;
            fn read(r: &mut $crate::jute::JuteReader) -> $crate::error::Result<Self> {
                Ok($name::from_i32(r.read_i32()?))
            }
            fn write(&self, w: &mut ::bytes::BytesMut) {
                $crate::jute::JuteWrite::write_i32(w, self.to_i32())
            }
        }

        #[cfg(test)]
        impl $crate::arb::Arb for $name {
            fn arb() -> ::proptest::strategy::BoxedStrategy<Self> {
                use ::proptest::strategy::Strategy;
                ::proptest::prelude::any::<i32>().prop_map($name::from_i32).boxed()
            }
        }
    };
}
pub(crate) use int_enum;
