// libnetwork's remote plugin protocol (docs/remote.md, docs/ipam.md): every call is an HTTP POST of a JSON
// body to /<Interface>.<Method>, answered with JSON. Shapes only; the client and the server share them.

/** Every reply may carry an error: network drivers write "Err", IPAM drivers "Error". */
export interface ErrorReply {
  Err?: string;
  Error?: string;
}

export interface ActivateResponse extends ErrorReply {
  Implements: string[];
}

/** The media type dockerd sends as Accept and expects back. */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';

// ---- NetworkDriver

export interface NetworkCapabilitiesResponse extends ErrorReply {
  Scope: 'local' | 'global';
  ConnectivityScope?: 'local' | 'global';
}

/** One pool of a network: CIDR pool and gateway ("10.99.0.1/24": CIDR form). */
export interface IpamData {
  AddressSpace: string;
  Pool: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string>;
}

/** Option keys dockerd puts in CreateNetwork's Options. */
export const GENERIC_OPTIONS = 'com.docker.network.generic';
export const ENABLE_IPV6 = 'com.docker.network.enable_ipv6';
export const INTERNAL = 'com.docker.network.internal';

export interface CreateNetworkRequest {
  NetworkID: string;
  Options: Record<string, unknown>;
  IPv4Data: IpamData[];
  IPv6Data: IpamData[];
}

export interface NetworkRequest {
  NetworkID: string;
}

export interface AllocateNetworkRequest extends CreateNetworkRequest {}
export interface AllocateNetworkResponse extends ErrorReply {
  Options?: Record<string, string>;
}

export interface EndpointInterface {
  Address?: string;
  AddressIPv6?: string;
  MacAddress?: string;
}

export interface CreateEndpointRequest {
  NetworkID: string;
  EndpointID: string;
  Interface: EndpointInterface;
  Options: Record<string, unknown>;
}

export interface CreateEndpointResponse extends ErrorReply {
  Interface?: EndpointInterface | null;
}

export interface EndpointRequest {
  NetworkID: string;
  EndpointID: string;
}

export interface EndpointOperInfoResponse extends ErrorReply {
  Value: Record<string, unknown>;
}

export interface JoinRequest {
  NetworkID: string;
  EndpointID: string;
  SandboxKey: string;
  Options: Record<string, unknown>;
}

/** RouteType 0: via NextHop; 1: connected (on the interface). */
export interface StaticRoute {
  Destination: string;
  RouteType: 0 | 1;
  NextHop?: string;
}

export interface JoinResponse extends ErrorReply {
  InterfaceName?: { SrcName: string; DstPrefix: string } | null;
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: StaticRoute[] | null;
  DisableGatewayService?: boolean;
}

export interface ProgramExternalConnectivityRequest {
  NetworkID: string;
  EndpointID: string;
  Options: Record<string, unknown>;
}

export interface DiscoveryRequest {
  DiscoveryType: number;
  DiscoveryData: unknown;
}

// ---- IpamDriver

export interface IpamCapabilitiesResponse extends ErrorReply {
  RequiresMACAddress?: boolean;
  RequiresRequestReplay?: boolean;
}

export interface AddressSpacesResponse extends ErrorReply {
  LocalDefaultAddressSpace: string;
  GlobalDefaultAddressSpace: string;
}

export interface RequestPoolRequest {
  AddressSpace: string;
  Pool: string;
  SubPool: string;
  Options: Record<string, string>;
  V6: boolean;
}

export interface RequestPoolResponse extends ErrorReply {
  PoolID: string;
  /** CIDR. */
  Pool: string;
  Data?: Record<string, string> | null;
}

export interface ReleasePoolRequest {
  PoolID: string;
}

/** dockerd asks for a network's gateway with this RequestAddressType. */
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const GATEWAY_ADDRESS = 'com.docker.network.gateway';

export interface RequestAddressRequest {
  PoolID: string;
  /** A specific address, or '' for any. */
  Address: string;
  Options: Record<string, string>;
}

export interface RequestAddressResponse extends ErrorReply {
  /** CIDR: the address with the pool's prefix. */
  Address: string;
  Data?: Record<string, string> | null;
}

export interface ReleaseAddressRequest {
  PoolID: string;
  Address: string;
}

/** Each call's request and response, so a client call and a server handler are typed by the method name. */
export interface NetworkDriverCalls {
  'NetworkDriver.GetCapabilities': [Record<string, never>, NetworkCapabilitiesResponse];
  'NetworkDriver.CreateNetwork': [CreateNetworkRequest, ErrorReply];
  'NetworkDriver.DeleteNetwork': [NetworkRequest, ErrorReply];
  'NetworkDriver.AllocateNetwork': [AllocateNetworkRequest, AllocateNetworkResponse];
  'NetworkDriver.FreeNetwork': [NetworkRequest, ErrorReply];
  'NetworkDriver.CreateEndpoint': [CreateEndpointRequest, CreateEndpointResponse];
  'NetworkDriver.EndpointOperInfo': [EndpointRequest, EndpointOperInfoResponse];
  'NetworkDriver.DeleteEndpoint': [EndpointRequest, ErrorReply];
  'NetworkDriver.Join': [JoinRequest, JoinResponse];
  'NetworkDriver.Leave': [EndpointRequest, ErrorReply];
  'NetworkDriver.ProgramExternalConnectivity': [ProgramExternalConnectivityRequest, ErrorReply];
  'NetworkDriver.RevokeExternalConnectivity': [EndpointRequest, ErrorReply];
  'NetworkDriver.DiscoverNew': [DiscoveryRequest, ErrorReply];
  'NetworkDriver.DiscoverDelete': [DiscoveryRequest, ErrorReply];
}

export interface IpamDriverCalls {
  'IpamDriver.GetCapabilities': [Record<string, never>, IpamCapabilitiesResponse];
  'IpamDriver.GetDefaultAddressSpaces': [Record<string, never>, AddressSpacesResponse];
  'IpamDriver.RequestPool': [RequestPoolRequest, RequestPoolResponse];
  'IpamDriver.ReleasePool': [ReleasePoolRequest, ErrorReply];
  'IpamDriver.RequestAddress': [RequestAddressRequest, RequestAddressResponse];
  'IpamDriver.ReleaseAddress': [ReleaseAddressRequest, ErrorReply];
}

export interface PluginCalls extends NetworkDriverCalls, IpamDriverCalls {
  'Plugin.Activate': [Record<string, never>, ActivateResponse];
}

export type Method = keyof PluginCalls;
export type RequestOf<M extends Method> = PluginCalls[M][0];
export type ResponseOf<M extends Method> = PluginCalls[M][1];
