import SwiftCompilerPlugin
import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `@Observed` wraps a function's body in `observe(<name>)`, as Langfuse's
/// `@observe` decorator wraps a Python function. The arguments become the
/// input (`{"args": [...], "kwargs": {...}}`: unlabelled parameters are args,
/// labelled ones kwargs; only `Encodable` values are recorded, decided by
/// overload at the call site because a macro cannot see conformances), and
/// `observe` records an `Encodable` return value as the output.
public struct ObservedMacro: BodyMacro {
    public static func expansion(
        of node: AttributeSyntax,
        providingBodyFor declaration: some DeclSyntaxProtocol & WithOptionalCodeBlockSyntax,
        in context: some MacroExpansionContext
    ) throws -> [CodeBlockItemSyntax] {
        guard let function = declaration.as(FunctionDeclSyntax.self), let body = function.body else {
            throw MacroExpansionErrorMessage("@Observed applies to a function with a body")
        }
        let signature = function.signature
        let effects = signature.effectSpecifiers
        let isAsync = effects?.asyncSpecifier != nil
        let isThrowing = effects?.throwsClause != nil

        // The name and type may be given: @Observed("name", as: .generation).
        var nameExpr: ExprSyntax = ExprSyntax(StringLiteralExprSyntax(content: function.name.text))
        var typeExpr: ExprSyntax? = nil
        if case .argumentList(let arguments) = node.arguments {
            for argument in arguments {
                switch argument.label?.text {
                case nil: nameExpr = argument.expression
                case "as": typeExpr = argument.expression
                default: break
                }
            }
        }

        var args = [String]()
        var kwargs = [String]()
        for parameter in signature.parameterClause.parameters {
            // An inout parameter cannot be read from the escaping-free
            // closure without exclusivity conflicts; it is left out.
            if let attributed = parameter.type.as(AttributedTypeSyntax.self),
                attributed.specifiers.contains(where: { $0.as(SimpleTypeSpecifierSyntax.self)?.specifier.tokenKind == .keyword(.inout) })
            {
                continue
            }
            let local = (parameter.secondName ?? parameter.firstName).text
            if local == "_" { continue }
            if parameter.firstName.tokenKind == .wildcard {
                args.append("TracefoldTracing.ObservedInput.value(\(local))")
            } else {
                kwargs.append("\(StringLiteralExprSyntax(content: local).description): TracefoldTracing.ObservedInput.value(\(local))")
            }
        }
        let input = "TracefoldTracing.ObservedInput.arguments([\(args.joined(separator: ", "))], [\(kwargs.isEmpty ? ":" : kwargs.joined(separator: ", "))])"

        // The closure's type is spelled out so that `observe` picks the
        // Encodable overload exactly when the function's result is Encodable.
        // An opaque result (`some P`) cannot be a closure's written type.
        // The handle is unused: the body reaches it as `currentObservation()`.
        let returnType = signature.returnClause?.type
        let isOpaque = returnType?.as(SomeOrAnyTypeSyntax.self)?.someOrAnySpecifier.tokenKind == .keyword(.some)
        let closureType =
            isOpaque
            ? " _ in"
            : " (_: TracefoldTracing.Observation) \(isAsync ? "async " : "")\(isThrowing ? "throws " : "")-> \(returnType?.trimmedDescription ?? "Void") in"
        let typeArgument = typeExpr.map { ", as: \($0.trimmedDescription)" } ?? ""
        let call = "\(isThrowing ? "try " : "")\(isAsync ? "await " : "")TracefoldTracing.observe(\(nameExpr.trimmedDescription)\(typeArgument), input: \(input)) {\(closureType)"
        let statements = body.statements.map(\.trimmedDescription).joined(separator: "\n")
        return ["return \(raw: call)\n\(raw: statements)\n}"]
    }
}

@main
struct TracefoldTracingMacrosPlugin: CompilerPlugin {
    let providingMacros: [Macro.Type] = [ObservedMacro.self]
}
